import { RedisPubSub } from 'graphql-redis-subscriptions'
import type { Redis } from 'ioredis'
import type { Bus, BusListener, BusMessage } from './bus.js'

export interface RedisBusOptions {
  /** Connection for PUBLISH and PING. Give it `enableOfflineQueue: false` so a publish while
   * Redis is down fails at once instead of queueing without bound. */
  readonly publisher: Redis
  /** Connection in subscriber mode; ioredis resubscribes its channels after a reconnect. */
  readonly subscriber: Redis
  /** Prepended to every channel name on Redis, so deployments (and test runs) sharing one
   * Redis do not hear each other. */
  readonly prefix: string
}

// Channels remembered for a resync announcement; past this the oldest are forgotten, and their
// subscribers catch up only at the channel's next event.
const MAX_UNANNOUNCED_CHANNELS = 10_000

/**
 * A bus across instances over Redis PubSub. One Redis subscription per channel fans out to
 * the local listeners. Messages published while a connection was down are lost by Redis, so
 * after the subscriber reconnects (and its subscriptions are active again) every local
 * listener gets `{ kind: 'resync' }` and catches up from the log; and once the publisher
 * reconnects, it publishes `{ kind: 'resync' }` on every channel whose publish failed, for the
 * subscribers (on any instance) that stayed connected. The caller owns the two clients and
 * quits them after `close()`.
 */
export function createRedisBus({ publisher, subscriber, prefix }: RedisBusOptions): Bus {
  const pubsub = new RedisPubSub({ publisher, subscriber })
  const local = new Map<string, { listeners: Set<BusListener>; subscription: Promise<number> }>()
  let lostConnection = false
  const unannounced = new Set<string>()

  const remember = (channel: string) => {
    unannounced.delete(channel)
    unannounced.add(channel)
    if (unannounced.size > MAX_UNANNOUNCED_CHANNELS) {
      unannounced.delete(unannounced.values().next().value as string)
    }
  }

  subscriber.on('close', () => {
    lostConnection = true
  })
  subscriber.on('ready', () => {
    if (!lostConnection) return
    lostConnection = false
    const resync = () => {
      for (const { listeners } of local.values()) {
        for (const listener of [...listeners]) listener({ kind: 'resync' })
      }
    }
    // ioredis sent the SUBSCRIBEs again just before 'ready'; this PING is answered after them,
    // so an event committed after the listeners re-read the log is sure to come on the bus.
    subscriber.ping().then(resync, resync)
  })
  publisher.on('ready', () => {
    for (const channel of [...unannounced]) {
      unannounced.delete(channel)
      pubsub.publish(prefix + channel, { kind: 'resync' }).catch(() => remember(channel))
    }
  })

  return {
    async publish(channel: string, message: BusMessage) {
      try {
        await pubsub.publish(prefix + channel, message)
      } catch (error) {
        remember(channel)
        throw error
      }
    },
    async subscribe(channel: string, listener: BusListener) {
      let entry = local.get(channel)
      if (!entry) {
        const listeners = new Set<BusListener>()
        const subscription = pubsub.subscribe<BusMessage>(prefix + channel, (message) => {
          for (const target of [...listeners]) target(message)
        })
        entry = { listeners, subscription }
        local.set(channel, entry)
      }
      const { listeners, subscription } = entry
      listeners.add(listener)
      await subscription
      return () => {
        listeners.delete(listener)
        if (listeners.size > 0 || local.get(channel) !== entry) return
        local.delete(channel)
        void subscription.then((id) => pubsub.unsubscribe(id))
      }
    },
    async ping() {
      if (subscriber.status !== 'ready') throw new Error(`redis subscriber is ${subscriber.status}`)
      await publisher.ping()
    },
    async close() {
      for (const { subscription } of local.values()) pubsub.unsubscribe(await subscription)
      local.clear()
    },
  }
}
