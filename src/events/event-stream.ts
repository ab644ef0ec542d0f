import type { Queryable } from '../db/database.js'
import { badCursor, cursorExpired } from '../errors.js'
import { type AsyncQueue, createAsyncQueue } from './async-queue.js'
import type { Bus } from './bus.js'
import { encodeCursor, type Positions } from './cursor.js'
import { channelBounds, readEvents } from './event-log.js'
import type { DeliveredEvent, StoredEvent } from './stored-event.js'

const REPLAY_PAGE_SIZE = 500
const RESYNC = Symbol('resync')
// Replay pauses while this many events wait for a slow reader, so a long resume stays bounded.
const MAX_PENDING_DELIVERIES = 1_000

export interface EventStreamOptions {
  /** The channels to follow (already authorized). */
  readonly channels: readonly string[]
  /**
   * Where to start per channel: events after this seq are replayed from the log. Channels
   * missing here start live, after the newest event at subscribe time. A seq past the newest
   * event fails the stream with `BAD_CURSOR`; one whose next event retention already pruned
   * fails it with `CURSOR_EXPIRED`.
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
 * Follows `channels` from a position. Resolves once the stream is live: subscribed to the bus
 * and positioned, so any event committed after it resolves will be delivered. Then replays
 * the log up to the present (merged across channels in publish order) and goes live. Every
 * event is delivered once, in seq order per channel, with no gap: events the bus repeats or
 * the replay already covered are dropped, and a jump in seq (the bus reordered or lost a
 * message) is filled from the log before going on. Rejects with `BAD_CURSOR` when a start
 * position is past the newest event, and with `CURSOR_EXPIRED` when retention already pruned
 * the events after it; the stream fails with `CURSOR_EXPIRED` too when pruning overtakes a
 * long replay, rather than skip what was pruned.
 */
export async function openEventStream(
  { db, bus }: EventStreamDeps,
  { channels, from, filter = () => true, onClose = () => {} }: EventStreamOptions,
): Promise<AsyncQueue<DeliveredEvent>> {
  // Bus messages in arrival order; RESYNC marks a reconnect after which the log is re-read.
  const incoming = createAsyncQueue<StoredEvent | typeof RESYNC>()
  const unsubscribes: Array<() => void> = []
  const output = createAsyncQueue<DeliveredEvent>(() => {
    incoming.return()
    for (const unsubscribe of unsubscribes) unsubscribe()
    onClose()
  })
  const positions = new Map<string, number>()

  const deliver = async (event: StoredEvent) => {
    // Every path below hands events over in seq order with gaps filled from the log, so a
    // missing seq can only mean retention pruned it under a lagging reader: fail, never skip.
    if (event.seq !== (positions.get(event.channel) ?? 0) + 1) throw cursorExpired()
    positions.set(event.channel, event.seq)
    if (!filter(event)) return
    output.push({ ...event, cursor: encodeCursor(positions) })
    await output.waitForRoom(MAX_PENDING_DELIVERIES)
  }

  /** Delivers the events of one channel after its position, up to `untilSeq`. */
  const fill = async (channel: string, untilSeq: number) => {
    for (;;) {
      const page = await readEvents(
        db,
        channel,
        positions.get(channel) ?? 0,
        REPLAY_PAGE_SIZE,
        untilSeq,
      )
      for (const event of page) {
        if (output.closed) return
        await deliver(event)
      }
      if (page.length < REPLAY_PAGE_SIZE) return
    }
  }

  /** Delivers everything after the positions, merged across channels by publish time. */
  const replay = async () => {
    const pages = new Map<string, StoredEvent[]>()
    const refill = async (channel: string) => {
      const page = await readEvents(db, channel, positions.get(channel) ?? 0, REPLAY_PAGE_SIZE)
      if (page.length > 0) pages.set(channel, page)
      else pages.delete(channel)
    }
    for (const channel of channels) await refill(channel)
    while (pages.size > 0 && !output.closed) {
      let earliest: StoredEvent | undefined
      for (const page of pages.values()) {
        const head = page[0] as StoredEvent
        if (!earliest || head.publishedAt < earliest.publishedAt) earliest = head
      }
      const event = earliest as StoredEvent
      const page = pages.get(event.channel) as StoredEvent[]
      page.shift()
      await deliver(event)
      if (page.length === 0) await refill(event.channel)
    }
  }

  const follow = async () => {
    await replay()
    for await (const event of incoming) {
      if (event === RESYNC) {
        await replay()
        continue
      }
      const last = positions.get(event.channel)
      if (last === undefined || event.seq <= last) continue
      if (event.seq > last + 1) await fill(event.channel, event.seq - 1)
      if (output.closed) return
      await deliver(event)
    }
  }

  try {
    for (const channel of channels) {
      unsubscribes.push(
        await bus.subscribe(channel, (message) => {
          if (message.kind === 'event') incoming.push(message.event)
          else if (message.kind === 'resync') incoming.push(RESYNC)
        }),
      )
    }
    for (const channel of channels) {
      const { head, prunedThrough } = await channelBounds(db, channel)
      const after = from?.get(channel)
      // A position past the head cannot come from this log (a forged cursor, or one kept
      // across a restore from an older backup); following it would silently skip every event
      // up to that seq, so the stream fails instead.
      if (after !== undefined && after > head) throw badCursor('it is ahead of the event log')
      if (after !== undefined && after < prunedThrough) throw cursorExpired()
      positions.set(channel, after ?? head)
    }
  } catch (error) {
    await output.return()
    throw error
  }
  follow().then(
    () => output.end(),
    (error: unknown) => output.fail(error),
  )
  return output
}
