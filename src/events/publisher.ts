import type { Database, Queryable } from '../db/database.js'
import type { Metrics } from '../ops/metrics.js'
import type { Bus } from './bus.js'
import { type ChannelRef, channelName } from './channels.js'
import { appendEvents } from './event-log.js'
import type { EventMap, EventType } from './event-map.js'
import {
  claimIdempotencyKey,
  type IdempotencyKey,
  saveIdempotentResult,
} from './idempotency-keys.js'
import type { StoredEvent } from './stored-event.js'

/** What a publish transaction can do besides plain SQL. */
export interface PublishScope {
  /** The open transaction: projections write through it. */
  readonly tx: Queryable
  /** Appends an event to `channel`; it reaches the bus only after the transaction commits. */
  append<T extends EventType>(
    channel: ChannelRef,
    type: T,
    data: EventMap[T],
  ): Promise<StoredEvent<T>>
  /** Appends events of one type to `channel` in order, in one statement (bulk imports). */
  appendAll<T extends EventType>(
    channel: ChannelRef,
    type: T,
    data: ReadonlyArray<EventMap[T]>,
  ): Promise<Array<StoredEvent<T>>>
  /** Marks a signal channel (stats) changed; subscribers re-read it after commit. */
  signal(channel: ChannelRef): void
}

export type { IdempotencyKey } from './idempotency-keys.js'

export interface PublishOptions {
  /**
   * Makes the publish happen at most once per key within the idempotency window: a repeat
   * with the same key and fingerprint (from any instance, even while the first is still
   * running) resolves with the first one's stored result, and appends and signals nothing.
   * The same key with another fingerprint rejects with `BAD_USER_INPUT`. With a key, the
   * result of `work` is stored as JSON, so it must be plain data. Default: no deduplication.
   */
  readonly idempotency?: IdempotencyKey | undefined
}

/** Runs publish transactions and hands what they appended to the bus once committed. */
export interface Publisher {
  /**
   * Runs `work` in one transaction. Resolves with its result only after the commit, i.e. once
   * every appended event is durable; rejects (and appends nothing) when `work` or the commit
   * fails.
   */
  publish<T>(work: (scope: PublishScope) => Promise<T>, options?: PublishOptions): Promise<T>
}

export interface PublisherDeps {
  readonly db: Database
  readonly bus: Bus
  /** Told about a bus failure after commit; the events stay in the log for resume. */
  readonly onBusError?: (error: unknown) => void
  /** How long an idempotency key deduplicates publishes, in ms (default 300000). */
  readonly idempotencyWindowMs?: number
  /** Counts committed events by type; unset, nothing is counted. */
  readonly metrics?: Pick<Metrics, 'eventsPublished'> | undefined
}

/** Creates the publisher: the single path by which events enter the log and the bus. */
export function createPublisher({
  db,
  bus,
  onBusError = () => {},
  idempotencyWindowMs = 300_000,
  metrics,
}: PublisherDeps): Publisher {
  return {
    async publish(work, { idempotency } = {}) {
      const appended: StoredEvent[] = []
      const signals = new Set<string>()
      const result = await db.transaction(async (tx) => {
        if (idempotency) {
          const claim = await claimIdempotencyKey(tx, idempotency, idempotencyWindowMs)
          // Already published: the stored result is what the first attempt answered.
          if (claim.kind === 'done') return claim.result as Awaited<ReturnType<typeof work>>
        }
        const appendAll = async <T extends EventType>(
          channel: ChannelRef,
          type: T,
          data: ReadonlyArray<EventMap[T]>,
        ) => {
          const events = await appendEvents(tx, channelName(channel), type, data)
          appended.push(...events)
          return events
        }
        const outcome = await work({
          tx,
          async append(channel, type, data) {
            const [event] = await appendAll(channel, type, [data])
            return event as StoredEvent<typeof type>
          },
          appendAll,
          signal(channel) {
            signals.add(channelName(channel))
          },
        })
        if (idempotency) await saveIdempotentResult(tx, idempotency, outcome)
        return outcome
      })
      for (const event of appended) metrics?.eventsPublished.inc({ type: event.type })
      const sends = [
        ...appended.map((event) => bus.publish(event.channel, { kind: 'event', event })),
        ...[...signals].map((channel) => bus.publish(channel, { kind: 'changed' })),
      ]
      for (const outcome of await Promise.allSettled(sends)) {
        if (outcome.status === 'rejected') onBusError(outcome.reason)
      }
      return result
    },
  }
}
