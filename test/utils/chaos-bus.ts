import type { Bus, BusListener, BusMessage } from '../../src/events/bus.js'

/** What the chaos bus does with one published message. */
export type ChaosAction = 'deliver' | 'drop' | 'hold' | 'duplicate'

/** A bus that misbehaves on purpose, within what the `Bus` contract allows. */
export interface ChaosBus extends Bus {
  /** Listeners subscribed right now, across channels. */
  readonly listeners: number
  /** Subscriptions ever made (stopped or not). */
  readonly subscriptions: number
  /** Messages published so far (delivered or not). */
  readonly published: number
  /** Delivers the held messages, newest first. */
  release(): Promise<void>
}

export interface ChaosBusOptions {
  /** Decides the fate of the `index`-th message (0-based); deliver all by default. */
  readonly plan?: (index: number, message: BusMessage) => ChaosAction
  /** Resolves before each `subscribe` takes effect, to model a slow remote bus. */
  readonly beforeSubscribe?: () => Promise<void>
}

/**
 * Wraps `inner` so that messages are dropped, repeated, or held back and delivered after
 * later ones (reordered), as `plan` says. Held messages go out, newest first, right after
 * the next delivered one.
 */
export function createChaosBus(
  inner: Bus,
  { plan = () => 'deliver', beforeSubscribe = async () => {} }: ChaosBusOptions = {},
): ChaosBus {
  let held: Array<[string, BusMessage]> = []
  let published = 0
  let listeners = 0
  let subscriptions = 0
  const release = async () => {
    const out = held.reverse()
    held = []
    for (const [channel, message] of out) await inner.publish(channel, message)
  }
  return {
    get listeners() {
      return listeners
    },
    get subscriptions() {
      return subscriptions
    },
    get published() {
      return published
    },
    release,
    async publish(channel, message) {
      const action = plan(published, message)
      published += 1
      if (action === 'drop') return
      if (action === 'hold') {
        held.push([channel, message])
        return
      }
      await inner.publish(channel, message)
      if (action === 'duplicate') await inner.publish(channel, message)
      await release()
    },
    async subscribe(channel: string, listener: BusListener) {
      await beforeSubscribe()
      const stop = await inner.subscribe(channel, listener)
      listeners += 1
      subscriptions += 1
      let stopped = false
      return () => {
        if (stopped) return
        stopped = true
        listeners -= 1
        stop()
      }
    },
    ping: () => inner.ping(),
    close: () => inner.close(),
  }
}
