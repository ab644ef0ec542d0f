import type { Queryable } from '../db/database.js'
import { createAsyncQueue } from './async-queue.js'
import type { Bus } from './bus.js'
import { encodeCursor, type Positions } from './cursor.js'
import { headSeq, readEvents } from './event-log.js'
import type { DeliveredEvent, StoredEvent } from './stored-event.js'

const REPLAY_PAGE_SIZE = 500
// Replay pauses while this many events wait for a slow reader, so a long resume stays bounded.
const MAX_PENDING_DELIVERIES = 1_000

export interface EventStreamOptions {
  /** The channels to follow (already authorized). */
  readonly channels: readonly string[]
  /**
   * Where to start per channel: events after this seq are replayed from the log. Channels
   * missing here start live, after the newest event at subscribe time.
   */
  readonly from?: Positions | undefined
  /** Delivers only events it accepts; skipped events still advance the cursor. */
  readonly filter?: ((event: StoredEvent) => boolean) | undefined
  /** Called once when the stream ends, however it ends. */
  readonly onClose?: (() => void) | undefined
}

export interface EventStreamDeps {
  readonly db: Queryable
  readonly bus: Bus
}

/**
 * Follows `channels` from a position: subscribes to the bus first, replays the log up to the
 * present, then goes live. Every event is delivered once, in seq order per channel, with no
 * gap: events the bus repeats or that the replay already covered are dropped, and a jump in
 * seq (the bus reordered or lost a message) is filled from the log before going on.
 */
export function openEventStream(
  { db, bus }: EventStreamDeps,
  { channels, from, filter = () => true, onClose = () => {} }: EventStreamOptions,
): AsyncIterableIterator<DeliveredEvent> {
  const incoming = createAsyncQueue<StoredEvent>()
  const unsubscribes: Array<() => void> = []
  const output = createAsyncQueue<DeliveredEvent>(() => {
    incoming.return()
    for (const unsubscribe of unsubscribes) unsubscribe()
    onClose()
  })
  const positions = new Map<string, number>()

  const deliver = async (event: StoredEvent) => {
    positions.set(event.channel, event.seq)
    if (!filter(event)) return
    output.push({ ...event, cursor: encodeCursor(positions) })
    await output.waitForRoom(MAX_PENDING_DELIVERIES)
  }

  const replay = async (channel: string, untilSeq?: number) => {
    for (;;) {
      const after = positions.get(channel) ?? 0
      const page = await readEvents(db, channel, after, REPLAY_PAGE_SIZE, untilSeq)
      for (const event of page) {
        if (output.closed) return
        await deliver(event)
      }
      if (page.length < REPLAY_PAGE_SIZE) return
    }
  }

  const pump = async () => {
    for (const channel of channels) {
      const unsubscribe = await bus.subscribe(channel, (message) => {
        if (message.kind === 'event') incoming.push(message.event)
      })
      unsubscribes.push(unsubscribe)
      if (output.closed) return unsubscribe()
    }
    for (const channel of channels) {
      positions.set(channel, from?.get(channel) ?? (await headSeq(db, channel)))
    }
    for (const channel of channels) await replay(channel)
    for await (const event of incoming) {
      const last = positions.get(event.channel)
      if (last === undefined || event.seq <= last) continue
      if (event.seq > last + 1) await replay(event.channel, event.seq - 1)
      if (output.closed) return
      await deliver(event)
    }
  }

  pump().then(
    () => output.end(),
    (error: unknown) => output.fail(error),
  )
  return output
}
