import type { Database, Queryable } from '../db/database.js'
import type { Bus } from './bus.js'
import { type ChannelRef, channelName } from './channels.js'
import { appendEvent } from './event-log.js'
import type { EventMap, EventType } from './event-map.js'
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
  /** Marks a signal channel (stats) changed; subscribers re-read it after commit. */
  signal(channel: ChannelRef): void
}

/** Runs publish transactions and hands what they appended to the bus once committed. */
export interface Publisher {
  /**
   * Runs `work` in one transaction. Resolves with its result only after the commit, i.e. once
   * every appended event is durable; rejects (and appends nothing) when `work` or the commit
   * fails.
   */
  publish<T>(work: (scope: PublishScope) => Promise<T>): Promise<T>
}

export interface PublisherDeps {
  readonly db: Database
  readonly bus: Bus
  /** Told about a bus failure after commit; the events stay in the log for resume. */
  readonly onBusError?: (error: unknown) => void
}

/** Creates the publisher: the single path by which events enter the log and the bus. */
export function createPublisher({ db, bus, onBusError = () => {} }: PublisherDeps): Publisher {
  return {
    async publish(work) {
      const appended: StoredEvent[] = []
      const signals = new Set<string>()
      const result = await db.transaction((tx) =>
        work({
          tx,
          async append(channel, type, data) {
            const event = await appendEvent(tx, channelName(channel), type, data)
            appended.push(event)
            return event
          },
          signal(channel) {
            signals.add(channelName(channel))
          },
        }),
      )
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
