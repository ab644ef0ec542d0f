import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Bus, BusMessage } from '../src/events/bus.js'
import { createInProcessBus } from '../src/events/in-process-bus.js'
import { createRedisBus } from '../src/events/redis-bus.js'
import type { StoredEvent } from '../src/events/stored-event.js'
import { redisAvailable, redisClients, testRedisPrefix } from './utils/services.js'

const hasRedis = await redisAvailable()

interface Engine {
  /** A bus on its own connections; `peer` shares its medium, as another instance would. */
  open(): Promise<{ bus: Bus; close(): Promise<void> }>
}

const inProcess = (): Engine => {
  const shared = createInProcessBus()
  return { open: async () => ({ bus: shared, close: async () => {} }) }
}

const redis = (): Engine & { clients: Redis[] } => {
  const prefix = testRedisPrefix()
  const clients: Redis[] = []
  return {
    clients,
    async open() {
      const { publisher, subscriber } = redisClients()
      clients.push(publisher, subscriber)
      const bus = createRedisBus({ publisher, subscriber, prefix })
      return {
        bus,
        async close() {
          await bus.close()
          publisher.disconnect()
          subscriber.disconnect()
        },
      }
    },
  }
}

const event = (channel: string, seq: number): StoredEvent => ({
  channel,
  seq,
  type: 'room.message',
  data: { from: 'u', room: 'r', ts: '2026-01-01T00:00:00.000Z', body: `m${seq}`, meta: null },
  publishedAt: '2026-01-01T00:00:00.000Z',
})

const engines: Array<[string, boolean, () => Engine]> = [
  ['in-process', true, inProcess],
  ['redis', hasRedis, redis],
]

describe.each(engines)('bus contract: %s', (_name, available, makeEngine) => {
  let engine: Engine
  const closers: Array<() => Promise<void>> = []
  const open = async () => {
    const opened = await engine.open()
    closers.push(opened.close)
    return opened.bus
  }
  beforeAll(() => {
    engine = makeEngine()
  })
  afterAll(async () => {
    for (const close of closers) await close()
  })

  it.skipIf(!available)(
    'delivers a channel to every listener in publish order, once subscribe resolved',
    async () => {
      const publisher = await open()
      const receiver = await open()
      const first: BusMessage[] = []
      const second: BusMessage[] = []
      const stopFirst = await receiver.subscribe('room:a', (m) => first.push(m))
      const stopSecond = await receiver.subscribe('room:a', (m) => second.push(m))
      for (let seq = 1; seq <= 200; seq++)
        await publisher.publish('room:a', { kind: 'event', event: event('room:a', seq) })
      await vi.waitFor(() => expect(second).toHaveLength(200))
      const seqs = (messages: BusMessage[]) =>
        messages.map((m) => (m.kind === 'event' ? m.event.seq : -1))
      expect(seqs(first)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
      expect(seqs(second)).toEqual(seqs(first))
      expect(first[0]).toEqual({ kind: 'event', event: event('room:a', 1) })
      stopFirst()
      stopSecond()
    },
  )

  it.skipIf(!available)('keeps channels apart and stops delivering after unsubscribe', async () => {
    const publisher = await open()
    const receiver = await open()
    const onB: BusMessage[] = []
    const onC: BusMessage[] = []
    const stopB = await receiver.subscribe('room:b', (m) => onB.push(m))
    const stopC = await receiver.subscribe('room:c', (m) => onC.push(m))
    await publisher.publish('room:b', { kind: 'changed' })
    await vi.waitFor(() => expect(onB).toEqual([{ kind: 'changed' }]))
    stopB()
    await publisher.publish('room:b', { kind: 'changed' })
    await publisher.publish('room:c', { kind: 'changed' })
    await vi.waitFor(() => expect(onC).toHaveLength(1))
    expect(onB).toHaveLength(1)
    stopC()
  })

  it.skipIf(!available)('answers ping once connected', async () => {
    const bus = await open()
    await expect
      .poll(() =>
        bus.ping().then(
          () => 'up',
          () => 'down',
        ),
      )
      .toBe('up')
  })
})

describe.skipIf(!hasRedis)('redis bus across connection loss', () => {
  it('tells listeners to resync after the subscriber reconnects, and fails ping while down', async () => {
    const prefix = testRedisPrefix()
    const { publisher, subscriber } = redisClients()
    const bus = createRedisBus({ publisher, subscriber, prefix })
    const received: BusMessage[] = []
    const stop = await bus.subscribe('room:d', (m) => received.push(m))
    subscriber.disconnect(true)
    await vi.waitFor(() => expect(received).toContainEqual({ kind: 'resync' }), { timeout: 10_000 })
    // Resubscribed: messages flow again.
    await vi.waitFor(async () => {
      await bus.publish('room:d', { kind: 'changed' })
      expect(received).toContainEqual({ kind: 'changed' })
    })
    publisher.disconnect(false)
    await expect(bus.ping()).rejects.toThrow()
    stop()
    await bus.close()
    subscriber.disconnect()
  })
})
