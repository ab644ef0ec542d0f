import type { StoredEvent } from './stored-event.js'

/**
 * What travels on the bus: a logged event; a signal that a projection changed; or, from the
 * bus itself, word that messages may have been lost (a reconnect), so listeners re-read the
 * log and the projections.
 */
export type BusMessage =
  | { readonly kind: 'event'; readonly event: StoredEvent }
  | { readonly kind: 'changed' }
  | { readonly kind: 'resync' }

/** Receives the messages of one channel, in the order the bus got them. */
export type BusListener = (message: BusMessage) => void

/**
 * Carries appended events to every instance. Delivery is at most once and may reorder across
 * publishers: subscribers fill gaps from the log, so the bus only has to be fast.
 */
export interface Bus {
  /** Sends `message` to every listener of `channel` on every instance. */
  publish(channel: string, message: BusMessage): Promise<void>
  /**
   * Starts listening to `channel`; resolves once messages published from now on will arrive.
   * The returned function stops listening.
   */
  subscribe(channel: string, listener: BusListener): Promise<() => void>
  /** Resolves when the bus can carry messages; rejects otherwise. */
  ping(): Promise<void>
  /** Stops all listening and releases connections. */
  close(): Promise<void>
}
