import type { Database } from '../db/database.js'
import type { Logger } from '../ops/logger.js'
import { pruneEvents } from './event-log.js'
import { deleteExpiredIdempotencyKeys } from './idempotency-keys.js'

// Any constant works; it only has to be the same for every instance of Switchboard.
const RETENTION_LOCK_KEY = 7_340_102

export interface RetentionOptions {
  /** The database whose log is pruned (made and closed by the caller). */
  readonly db: Database
  /** Events older than this are pruned (config `RETENTION_MAX_AGE_HOURS`). */
  readonly maxAgeHours: number
  /** Each channel keeps at most this many of its newest events (`RETENTION_MAX_EVENTS`). */
  readonly maxEvents: number
  /** Idempotency keys older than this are deleted (`IDEMPOTENCY_WINDOW_MS`). */
  readonly idempotencyWindowMs: number
  /** Time between the end of one run and the start of the next (`RETENTION_INTERVAL_MS`). */
  readonly intervalMs: number
  /** Where a failed run is reported; the next run tries again. */
  readonly logger?: Logger | undefined
}

/** What one run removed. */
export interface PruneReport {
  /** `false` when another instance held the retention lock, so this run did nothing. */
  readonly ran: boolean
  readonly channels: number
  readonly events: number
  readonly idempotencyKeys: number
}

export interface Retention {
  /** Runs `pruneOnce` now and then every `intervalMs` until `stop()`. */
  start(): void
  /** Stops the schedule; resolves once a run in progress has finished. */
  stop(): Promise<void>
  /** Prunes the log and the expired idempotency keys once. */
  pruneOnce(): Promise<PruneReport>
}

/**
 * Prunes the event log by age and per-channel count, and deletes expired idempotency keys.
 * Safe with many instances: a run takes a transaction-scoped advisory lock and skips when
 * another instance holds it, and every delete is idempotent anyway.
 */
export function createRetention({
  db,
  maxAgeHours,
  maxEvents,
  idempotencyWindowMs,
  intervalMs,
  logger,
}: RetentionOptions): Retention {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> = Promise.resolve()
  let stopped = true

  const pruneOnce = async (): Promise<PruneReport> => {
    const pruned = await db.transaction(async (tx) => {
      const [lock] = await tx.query<{ locked: boolean }>(
        'select pg_try_advisory_xact_lock($1) as locked',
        [RETENTION_LOCK_KEY],
      )
      if (!lock?.locked) return undefined
      return pruneEvents(tx, { maxAgeHours, maxEvents })
    })
    if (!pruned) return { ran: false, channels: 0, events: 0, idempotencyKeys: 0 }
    // Its own statement, outside the log transaction: a publish holds its key row while it
    // appends, so deleting keys while holding channel rows could deadlock with it.
    const idempotencyKeys = await deleteExpiredIdempotencyKeys(db, idempotencyWindowMs)
    return { ran: true, ...pruned, idempotencyKeys }
  }

  const schedule = (delay: number) => {
    if (stopped) return
    timer = setTimeout(() => {
      running = pruneOnce()
        .then((report) => {
          if (report.events > 0 || report.idempotencyKeys > 0) {
            logger?.info({ retention: report }, 'event log pruned')
          }
        })
        .catch((err: unknown) => logger?.warn({ err }, 'event log pruning failed'))
        .finally(() => schedule(intervalMs))
    }, delay)
    // Pruning alone never keeps the process alive.
    timer.unref()
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      schedule(0)
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
    pruneOnce,
  }
}
