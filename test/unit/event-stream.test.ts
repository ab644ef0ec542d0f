import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Database } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { openPgliteDatabase } from '../../src/db/pglite-database.js'
import type { Bus } from '../../src/events/bus.js'
import { type ChannelRef, channelName } from '../../src/events/channels.js'
import { decodeCursor } from '../../src/events/cursor.js'
import { openEventStream } from '../../src/events/event-stream.js'
import { createInProcessBus } from '../../src/events/in-process-bus.js'
import { createPublisher } from '../../src/events/publisher.js'
import type { DeliveredEvent } from '../../src/events/stored-event.js'
import { type ChaosAction, createChaosBus } from '../utils/chaos-bus.js'
import { within } from '../utils/within.js'

let db: Database

beforeAll(async () => {
  db = await openPgliteDatabase('memory://')
  await migrate(db)
})

afterAll(async () => {
  await db?.close()
})

let lotCounter = 0
/** A fresh channel per test, so tests share the database but not their sequences. */
function freshLot(): { ref: ChannelRef; name: string } {
  lotCounter += 1
  const ref: ChannelRef = { kind: 'lotParking', lotId: `unit-${lotCounter}` }
  return { ref, name: channelName(ref) }
}

/** Appends `count` alerts to `ref`, `concurrency` publishes in flight, through `bus`. */
async function publishAlerts(bus: Bus, ref: ChannelRef, count: number, concurrency = 1) {
  const publisher = createPublisher({ db, bus })
  let next = 0
  const worker = async () => {
    while (next < count) {
      next += 1
      await publisher.publish((scope) =>
        scope.append(ref, 'parking.alert', {
          lotId: ref.kind === 'lotParking' ? ref.lotId : '?',
          level: 'INFO',
          message: `alert ${next}`,
          raisedAt: new Date().toISOString(),
          actionRequired: false,
          automatic: false,
        }),
      )
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

/** Reads `count` events from `stream`, failing after `timeoutMs` instead of hanging. */
async function take(
  stream: AsyncIterableIterator<DeliveredEvent>,
  count: number,
  timeoutMs = 5_000,
): Promise<DeliveredEvent[]> {
  const events: DeliveredEvent[] = []
  const deadline = Date.now() + timeoutMs
  while (events.length < count) {
    const next = await within(stream.next(), deadline - Date.now(), `event ${events.length + 1}`)
    if (next.done) throw new Error(`stream ended after ${events.length} events`)
    events.push(next.value)
  }
  return events
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** Drops every 4th message, holds back every 3rd (reordering it), repeats every 5th. */
const unreliable = (index: number): ChaosAction => {
  if (index % 4 === 1) return 'drop'
  if (index % 3 === 2) return 'hold'
  if (index % 5 === 0) return 'duplicate'
  return 'deliver'
}

describe('openEventStream', () => {
  it('yields every seq once, in order, over a bus that drops, repeats and reorders', async () => {
    const { ref, name } = freshLot()
    let reliable = false
    const bus = createChaosBus(createInProcessBus(), {
      plan: (index) => (reliable ? 'deliver' : unreliable(index)),
    })
    const stream = await openEventStream(
      { db, bus },
      { channels: [name], from: new Map([[name, 0]]) },
    )
    await vi.waitFor(() => expect(bus.listeners).toBe(1))

    await publishAlerts(bus, ref, 60, 4)
    // The bus is at most once: a lost tail is noticed only when a later event arrives.
    reliable = true
    await publishAlerts(bus, ref, 1)
    const events = await take(stream, 61)
    expect(events.map((e) => e.seq)).toEqual(range(1, 61))
    for (const event of events) {
      expect(event.channel).toBe(name)
      expect([...decodeCursor(event.cursor)]).toEqual([[name, event.seq]])
    }

    // Nothing more is queued: the next event after a fresh publish is the next seq.
    await publishAlerts(bus, ref, 1)
    const [after] = await take(stream, 1)
    expect(after?.seq).toBe(62)
    await stream.return?.()
  })

  it('hands over from replay to live with no gap and no duplicate while publishers publish', async () => {
    const { ref, name } = freshLot()
    const inner = createInProcessBus()
    let reliable = false
    const bus = createChaosBus(inner, {
      plan: (index) => (reliable ? 'deliver' : unreliable(index)),
    })
    await publishAlerts(bus, ref, 30)

    const publishing = publishAlerts(bus, ref, 120, 4)
    const stream = await openEventStream(
      { db, bus },
      { channels: [name], from: new Map([[name, 10]]) },
    )
    await publishing
    reliable = true
    await publishAlerts(bus, ref, 1)
    const events = await take(stream, 141)
    expect(events.map((e) => e.seq)).toEqual(range(11, 151))
    await stream.return?.()
  })

  it('keeps each channel of a multi-channel stream in order and the cursor carries both', async () => {
    const a = freshLot()
    const b = freshLot()
    let reliable = false
    const bus = createChaosBus(createInProcessBus(), {
      plan: (index) => (reliable ? 'deliver' : unreliable(index)),
    })
    const stream = await openEventStream(
      { db, bus },
      {
        channels: [a.name, b.name],
        from: new Map([
          [a.name, 0],
          [b.name, 0],
        ]),
      },
    )
    await vi.waitFor(() => expect(bus.listeners).toBe(2))
    await Promise.all([publishAlerts(bus, a.ref, 25, 2), publishAlerts(bus, b.ref, 25, 2)])
    reliable = true
    await publishAlerts(bus, a.ref, 1)
    await publishAlerts(bus, b.ref, 1)
    const events = await take(stream, 52)
    expect(events.filter((e) => e.channel === a.name).map((e) => e.seq)).toEqual(range(1, 26))
    expect(events.filter((e) => e.channel === b.name).map((e) => e.seq)).toEqual(range(1, 26))
    const last = events.at(-1) as DeliveredEvent
    expect(Object.fromEntries(decodeCursor(last.cursor))).toEqual({ [a.name]: 26, [b.name]: 26 })
    await stream.return?.()
  })

  it('starts live at the head when given no position: the next event after open is delivered', async () => {
    const { ref, name } = freshLot()
    const bus = createChaosBus(createInProcessBus())
    await publishAlerts(bus, ref, 5)
    const stream = await openEventStream({ db, bus }, { channels: [name] })
    await publishAlerts(bus, ref, 2)
    const events = await take(stream, 2)
    expect(events.map((e) => e.seq)).toEqual([6, 7])
    await stream.return?.()
  })

  it('skips filtered-out events but still moves the cursor past them', async () => {
    const { ref, name } = freshLot()
    const bus = createChaosBus(createInProcessBus())
    await publishAlerts(bus, ref, 6)
    const stream = await openEventStream(
      { db, bus },
      { channels: [name], from: new Map([[name, 0]]), filter: (event) => event.seq % 3 === 0 },
    )
    const events = await take(stream, 2)
    expect(events.map((e) => e.seq)).toEqual([3, 6])
    expect([...decodeCursor((events[1] as DeliveredEvent).cursor)]).toEqual([[name, 6]])
    await stream.return?.()
  })

  it('refuses with BAD_CURSOR when started past the head, rather than skip events', async () => {
    const { ref, name } = freshLot()
    const bus = createChaosBus(createInProcessBus())
    await publishAlerts(bus, ref, 3)
    await expect(
      openEventStream({ db, bus }, { channels: [name], from: new Map([[name, 9]]) }),
    ).rejects.toMatchObject({ extensions: { code: 'BAD_CURSOR' } })
    expect(bus.listeners).toBe(0)
  })

  it('return() on an idle stream resolves promptly, ends a pending next() and unsubscribes', async () => {
    const { name } = freshLot()
    const bus = createChaosBus(createInProcessBus())
    const stream = await openEventStream(
      { db, bus },
      { channels: [name], from: new Map([[name, 0]]) },
    )
    await vi.waitFor(() => expect(bus.listeners).toBe(1))
    const pending = stream.next()
    await within<unknown>(stream.return?.() ?? Promise.resolve(), 100, 'return()')
    await expect(within(pending, 100, 'the pending next()')).resolves.toEqual({
      done: true,
      value: undefined,
    })
    expect(bus.listeners).toBe(0)
    await expect(stream.next()).resolves.toMatchObject({ done: true })
  })

  it('fails a reader that stopped reading with SLOW_CONSUMER past 10,000 queued events, once', async () => {
    const { ref, name } = freshLot()
    const bus = createInProcessBus()
    let drops = 0
    const stream = await openEventStream(
      { db, bus },
      { channels: [name], onSlowConsumer: () => (drops += 1) },
    )
    const alerts = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        lotId: ref.kind === 'lotParking' ? ref.lotId : '?',
        level: 'INFO' as const,
        message: `alert ${from + i}`,
        raisedAt: new Date().toISOString(),
        actionRequired: false,
        automatic: false,
      }))
    const publisher = createPublisher({ db, bus })
    // Nobody reads while 10,000 events queue: still within the limit.
    await publisher.publish((scope) => scope.appendAll(ref, 'parking.alert', alerts(1, 10_000)))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(drops).toBe(0)
    // Five more are too many.
    await publisher.publish((scope) => scope.appendAll(ref, 'parking.alert', alerts(10_001, 5)))
    await vi.waitFor(() => expect(drops).toBe(1))
    // What was queued is still delivered, then the failure: the reader resumes from its cursor.
    const received = await take(stream, 10_005)
    expect(received.map((event) => event.seq)).toEqual(
      Array.from({ length: 10_005 }, (_, i) => i + 1),
    )
    await expect(stream.next()).rejects.toMatchObject({ extensions: { code: 'SLOW_CONSUMER' } })
    expect(drops).toBe(1)
  })
})
