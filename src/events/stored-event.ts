import type { EventMap, EventType } from './event-map.js'

/** An event as the log holds it: `seq` is its gap-free position in `channel`. */
export interface StoredEvent<T extends EventType = EventType> {
  readonly channel: string
  readonly seq: number
  readonly type: T
  readonly data: EventMap[T]
  /** ISO 8601 time the append committed (database clock). */
  readonly publishedAt: string
}

/** A stored event on its way to one subscriber, with the cursor to resume after it. */
export interface DeliveredEvent<T extends EventType = EventType> extends StoredEvent<T> {
  readonly cursor: string
}
