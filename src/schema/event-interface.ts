import type { EventMap, EventType } from '../events/event-map.js'
import type { DeliveredEvent, StoredEvent } from '../events/stored-event.js'
import { builder } from './builder.js'

/** Where an event sits in its channel; every event type in the schema carries it. */
export interface EventMeta {
  readonly eventType: EventType
  readonly channel: string
  readonly seq: number
  readonly cursor: string | null
  readonly publishedAt: string
}

/** An event as the schema sees it: its data fields beside its position. */
export type EventView<T extends EventType> = EventMap[T] & EventMeta

/** Flattens a stored or delivered event for the schema's object types. */
export function toEventView<T extends EventType>(
  event: StoredEvent<T> | DeliveredEvent<T>,
): EventView<T> {
  return {
    ...event.data,
    eventType: event.type,
    channel: event.channel,
    seq: event.seq,
    cursor: 'cursor' in event ? event.cursor : null,
    publishedAt: event.publishedAt,
  }
}

/** The fields every event shares. `cursor` is set on subscription deliveries. */
export const EventInterface = builder.interfaceRef<EventMeta>('Event').implement({
  description: 'An event appended to a channel of the durable log.',
  fields: (t) => ({
    channel: t.exposeString('channel', { description: 'The channel the event was appended to.' }),
    seq: t.exposeInt('seq', { description: 'Gap-free position of the event in its channel.' }),
    cursor: t.exposeString('cursor', {
      nullable: true,
      description: 'Opaque position to resume after this event (`after:`); set on deliveries.',
    }),
    publishedAt: t.expose('publishedAt', {
      type: 'DateTime',
      description: 'When the append committed.',
    }),
  }),
})

/** Picks a union member by the event's type; `names` maps each event type to its object name. */
export function resolveEventType(names: Partial<Record<EventType, string>>) {
  return (event: EventMeta): string => {
    const name = names[event.eventType]
    if (!name) throw new Error(`no schema type for event ${event.eventType}`)
    return name
  }
}
