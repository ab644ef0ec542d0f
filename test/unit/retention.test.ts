import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Database, Queryable } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { createPgDatabase } from '../../src/db/pg-database.js'
import { openPgliteDatabase } from '../../src/db/pglite-database.js'
import type { Bus } from '../../src/events/bus.js'
import { type ChannelRef, channelName } from '../../src/events/channels.js'
import { channelBounds, pruneEvents } from '../../src/events/event-log.js'
import { openEventStream } from '../../src/events/event-stream.js'
import { createInProcessBus } from '../../src/events/in-process-bus.js'
import { createPublisher } from '../../src/events/publisher.js'
import { createRetention, type RetentionOptions } from '../../src/events/retention.js'
import type { DeliveredEvent } from '../../src/events/stored-event.js'
import { createChaosBus } from '../utils/chaos-bus.js'
import { makePostgresDatabase, TEST_STACK } from '../utils/stores.js'
import { within } from '../utils/within.js'

/** The engines this run covers: PGlite always, PostgreSQL too under `TEST_STACK=postgres`. */
const ENGINES =
  TEST_STACK === 'postgres' ? (['pglite', 'postgres'] as const) : (['pglite'] as const)

async function openEngine(
  engine: (typeof ENGINES)[number],
): Promise<{ db: Database; remove(): Promise<void> }> {
  if (engine === 'pglite') {
    const db = await openPgliteDatabase('memory://')
    return { db, remove: () => db.close() }
  }
  const database = await makePostgresDatabase()
  const pool = new pg.Pool({ connectionString: database.url, max: 8 })
  // As in the app, a failed idle connection is dropped, not an error of the process:
  // `pool.end()` resolves before its connections have closed, and dropping the database right
  // after terminates the ones still closing.
  pool.on('error', () => {})
  const db = createPgDatabase(pool)
  return {
    db,
    async remove() {
      await db.close()
      await database.remove()
    },
  }
}

let lotCounter = 0
/** A fresh channel per test, so tests share a database but not their sequences. */
function freshLot(): { ref: ChannelRef; name: string } {
  lotCounter += 1
  const ref: ChannelRef = { kind: 'lotParking', lotId: `retention-${lotCounter}` }
  return { ref, name: channelName(ref) }
}

const alert = (lotId: string, message: string) => ({
  lotId,
  level: 'INFO' as const,
  message,
  raisedAt: new Date().toISOString(),
  actionRequired: false,
  automatic: false,
})

/** Appends `count` alerts to `ref` in one transaction (fast; seqs are what matter here). */
async function appendAlerts(db: Database, bus: Bus, ref: ChannelRef, count: number) {
  const lotId = ref.kind === 'lotParking' ? ref.lotId : '?'
  await createPublisher({ db, bus }).publish(async (scope) => {
    for (let i = 1; i <= count; i += 1)
      await scope.append(ref, 'parking.alert', alert(lotId, `${i}`))
  })
}

async function seqsOf(db: Queryable, channel: string): Promise<number[]> {
  const rows = await db.query<{ seq: string | number }>(
    'select seq from events where channel = $1 order by seq',
    [channel],
  )
  return rows.map((row) => Number(row.seq))
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A month: nothing in these tests is that old unless a test makes it so. */
const KEEP_BY_AGE = 24 * 30

describe.each(ENGINES)('retention on %s', (engine) => {
  let db: Database
  let remove: () => Promise<void>
  const bus = createInProcessBus()
  const retention = (options: Partial<RetentionOptions> = {}) =>
    createRetention({
      db,
      maxAgeHours: KEEP_BY_AGE,
      maxEvents: 1_000_000,
      idempotencyWindowMs: 60_000,
      intervalMs: 60_000,
      ...options,
    })

  beforeAll(async () => {
    ;({ db, remove } = await openEngine(engine))
    await migrate(db)
  })

  afterAll(async () => {
    await remove?.()
  })

  it('keeps the newest maxEvents of a channel and records the pruned floor', async () => {
    const { ref, name } = freshLot()
    await appendAlerts(db, bus, ref, 10)
    const report = await retention({ maxEvents: 3 }).pruneOnce()
    expect(report).toMatchObject({ ran: true, channels: 1, events: 7 })
    expect(await seqsOf(db, name)).toEqual([8, 9, 10])
    expect(await channelBounds(db, name)).toEqual({ head: 10, prunedThrough: 7 })

    // Appending continues the channel's sequence, and a second run removes only the excess.
    await appendAlerts(db, bus, ref, 2)
    expect(await retention({ maxEvents: 3 }).pruneOnce()).toMatchObject({ events: 2 })
    expect(await seqsOf(db, name)).toEqual([10, 11, 12])
    expect(await retention({ maxEvents: 3 }).pruneOnce()).toMatchObject({ events: 0 })
  })

  it('prunes events older than maxAgeHours but never the newest event of a channel', async () => {
    const partly = freshLot()
    const wholly = freshLot()
    await appendAlerts(db, bus, partly.ref, 6)
    await appendAlerts(db, bus, wholly.ref, 4)
    await db.query(
      `update events set published_at = now() - interval '3 hours'
       where (channel = $1 and seq <= 4) or channel = $2`,
      [partly.name, wholly.name],
    )
    await retention({ maxAgeHours: 2 }).pruneOnce()
    expect(await seqsOf(db, partly.name)).toEqual([5, 6])
    expect(await channelBounds(db, partly.name)).toEqual({ head: 6, prunedThrough: 4 })
    // All of it is old, yet the newest stays: the head remains readable and keeps counting.
    expect(await seqsOf(db, wholly.name)).toEqual([4])
    expect(await channelBounds(db, wholly.name)).toEqual({ head: 4, prunedThrough: 3 })
    await appendAlerts(db, bus, wholly.ref, 1)
    expect(await seqsOf(db, wholly.name)).toEqual([4, 5])
  })

  it('prunes each event once when several instances run at the same time', async () => {
    const channels = [freshLot(), freshLot(), freshLot()]
    for (const { ref } of channels) await appendAlerts(db, bus, ref, 20)
    const instances = [1, 2, 3, 4].map(() => retention({ maxEvents: 5 }))
    const reports = await Promise.all(instances.map((instance) => instance.pruneOnce()))
    const removed = reports.reduce((sum, report) => sum + report.events, 0)
    expect(removed).toBe(3 * 15)
    for (const { name } of channels) {
      expect(await seqsOf(db, name)).toEqual(range(16, 20))
      expect(await channelBounds(db, name)).toEqual({ head: 20, prunedThrough: 15 })
    }
  })

  it('neither waits on nor deadlocks with publishes appending to several channels', async () => {
    const a = freshLot()
    const b = freshLot()
    const publisher = createPublisher({ db, bus })
    const lotId = (ref: ChannelRef) => (ref.kind === 'lotParking' ? ref.lotId : '?')
    // Each publish holds channel a's row while it appends to b, as an order update holds the
    // order's channel while appending to the seller's; the pruner skips rows held rather than
    // wait on them, so it can never close a lock cycle with such a publish.
    const publishBoth = (n: number) =>
      publisher.publish(async (scope) => {
        await scope.append(a.ref, 'parking.alert', alert(lotId(a.ref), `${n}`))
        await scope.append(b.ref, 'parking.alert', alert(lotId(b.ref), `${n}`))
      })
    let publishing = true
    const publishes = (async () => {
      const writers = [0, 1, 2, 3].map(async () => {
        for (let n = 0; n < 40; n += 1) await publishBoth(n)
      })
      await Promise.all(writers)
      publishing = false
    })()
    const pruner = retention({ maxEvents: 10 })
    let runs = 0
    while (publishing) {
      await pruner.pruneOnce()
      runs += 1
    }
    await publishes
    await pruner.pruneOnce()
    expect(runs).toBeGreaterThan(0)
    for (const { name } of [a, b]) {
      expect(await seqsOf(db, name)).toEqual(range(151, 160))
      expect(await channelBounds(db, name)).toEqual({ head: 160, prunedThrough: 150 })
    }
  })

  it('deletes idempotency keys older than the window, and only those', async () => {
    await db.query(
      `insert into idempotency_keys (subject, key, fingerprint, result, created_at) values
       ('s', 'old', 'f', 'null', now() - interval '2 minutes'),
       ('s', 'new', 'f', 'null', now())`,
    )
    const report = await retention({ idempotencyWindowMs: 60_000 }).pruneOnce()
    expect(report.idempotencyKeys).toBe(1)
    const left = await db.query<{ key: string }>(
      "select key from idempotency_keys where subject = 's'",
    )
    expect(left.map((row) => row.key)).toEqual(['new'])
  })

  it('runs on its schedule once started, and stop() ends it', async () => {
    const { ref, name } = freshLot()
    await appendAlerts(db, bus, ref, 8)
    const scheduled = retention({ maxEvents: 2, intervalMs: 100 })
    scheduled.start()
    await vi.waitFor(async () => expect(await seqsOf(db, name)).toEqual([7, 8]), {
      timeout: 5_000,
    })
    await scheduled.stop()
  })
})

/** A deferred: a promise with its resolve function. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/**
 * `db`, except that the first read of events matching `hold(params)` waits until `release()`;
 * `reached` resolves when it started waiting. Lets a test prune exactly between two reads.
 */
function holdRead(db: Database, hold: (params: readonly unknown[]) => boolean) {
  const reached = deferred()
  const gate = deferred()
  let held = false
  const gated: Queryable = {
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      if (!held && sql.includes('from events') && hold(params)) {
        held = true
        reached.resolve()
        await gate.promise
      }
      return db.query<Row>(sql, params)
    },
  }
  return { db: gated, reached: reached.promise, release: gate.resolve }
}

async function takeUntilFailure(stream: AsyncIterableIterator<DeliveredEvent>) {
  const events: DeliveredEvent[] = []
  for (;;) {
    const next = await within(stream.next(), 5_000, `event ${events.length + 1}`)
    if (next.done) throw new Error(`stream ended after ${events.length} events`)
    events.push(next.value)
  }
}

describe('event streams over a pruned log', () => {
  let db: Database

  beforeAll(async () => {
    db = await openPgliteDatabase('memory://')
    await migrate(db)
  })

  afterAll(async () => {
    await db?.close()
  })

  const prune = (maxEvents: number) =>
    db.transaction((tx) => pruneEvents(tx, { maxAgeHours: KEEP_BY_AGE, maxEvents }))

  it('refuses a position before the pruned floor with CURSOR_EXPIRED; resumes from the floor', async () => {
    const { ref, name } = freshLot()
    const bus = createChaosBus(createInProcessBus())
    await appendAlerts(db, bus, ref, 10)
    await prune(4)

    await expect(
      openEventStream({ db, bus }, { channels: [name], from: new Map([[name, 5]]) }),
    ).rejects.toMatchObject({ extensions: { code: 'CURSOR_EXPIRED' } })
    expect(bus.listeners).toBe(0)

    const stream = await openEventStream(
      { db, bus },
      { channels: [name], from: new Map([[name, 6]]) },
    )
    const seqs: number[] = []
    for (const _ of range(7, 10)) {
      const next = await within(stream.next(), 5_000, 'a replayed event')
      seqs.push((next.value as DeliveredEvent).seq)
    }
    expect(seqs).toEqual(range(7, 10))
    await stream.return?.()
  })

  it('fails with CURSOR_EXPIRED, not a silent skip, when pruning overtakes a replay', async () => {
    const { ref, name } = freshLot()
    const bus = createChaosBus(createInProcessBus())
    await appendAlerts(db, bus, ref, 600)
    // The replay reads 500 events, then its read of the next page waits while we prune.
    const reads = holdRead(db, (params) => params[1] === 500)
    const stream = await openEventStream(
      { db: reads.db, bus },
      { channels: [name], from: new Map([[name, 0]]) },
    )
    await within(reads.reached, 5_000, 'the second replay page')
    await prune(50)
    reads.release()

    const failure = takeUntilFailure(stream)
    await expect(failure).rejects.toMatchObject({ extensions: { code: 'CURSOR_EXPIRED' } })
    expect(bus.listeners).toBe(0)
  })

  it('fails with CURSOR_EXPIRED when a gap the bus left was pruned before it could be filled', async () => {
    const { ref, name } = freshLot()
    // The bus loses the first five events; the sixth reveals the gap.
    const bus = createChaosBus(createInProcessBus(), {
      plan: (index) => (index < 5 ? 'drop' : 'deliver'),
    })
    const reads = holdRead(db, (params) => params[2] === 5)
    const stream = await openEventStream({ db: reads.db, bus }, { channels: [name] })
    await vi.waitFor(() => expect(bus.listeners).toBe(1))
    const failure = takeUntilFailure(stream)
    for (const _ of range(1, 6)) await appendAlerts(db, bus, ref, 1)
    await within(reads.reached, 5_000, 'the read filling the gap')
    await prune(1)
    reads.release()
    await expect(failure).rejects.toMatchObject({ extensions: { code: 'CURSOR_EXPIRED' } })
  })
})
