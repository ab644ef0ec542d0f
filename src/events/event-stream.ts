import { slowConsumer } from '../errors.js'
import { type AsyncQueue, createAsyncQueue } from './async-queue.js'
import type { Bus } from './bus.js'
import { createFeedHub, type FeedGroup, type FeedHub, type JoinOptions } from './channel-feed.js'
import type { DeliveredEvent, StoredEvent } from './stored-event.js'

// Replay pauses while this many events wait for a slow reader, so a long resume stays bounded.
const MAX_PENDING_DELIVERIES = 1_000
// Live events queued for a reader that stopped reading; past this the stream fails with
// SLOW_CONSUMER instead of holding memory without bound (the client resumes with its cursor).
const MAX_QUEUED_EVENTS = 10_000

export interface EventStreamOptions extends JoinOptions {
  /** Delivers only events it accepts; skipped events still advance the cursor. */
  readonly filter?: ((event: StoredEvent) => boolean) | undefined
  /** Called once when the stream ends, however it ends. */
  readonly onClose?: (() => void) | undefined
  /** Rejects when the reader may no longer read the channels (see `FeedMember.recheck`). */
  readonly recheck?: (() => Promise<void>) | undefined
  /** Called when the stream fails with `SLOW_CONSUMER` (counted by the caller's metrics). */
  readonly onSlowConsumer?: (() => void) | undefined
}

export interface EventStreamDeps {
  readonly db: import('../db/database.js').Queryable
  readonly bus: Bus
  /** The shared feeds to join; a private hub over `db` and `bus` when omitted. */
  readonly feeds?: FeedHub | undefined
}

// Iterator streams render nothing: each consumer executes its own events.
const UNRENDERED: FeedGroup<undefined> = { render: () => undefined }

/**
 * Follows `channels` from a position as an async iterator (SSE, HTTP and anything else that
 * pulls). Resolves once the stream is live: any event committed after it resolves will be
 * delivered. Replays the log after `from` (merged across channels in publish order), then
 * goes live; every event once, in seq order per channel, with no gap (see `FeedHub.join`).
 * Rejects with `BAD_CURSOR` or `CURSOR_EXPIRED` for an unusable start position.
 */
export async function openEventStream(
  { db, bus, feeds = createFeedHub({ db, bus }) }: EventStreamDeps,
  {
    channels,
    from,
    filter = () => true,
    onClose = () => {},
    recheck,
    onSlowConsumer = () => {},
  }: EventStreamOptions,
): Promise<AsyncQueue<DeliveredEvent>> {
  let leave: (() => void) | undefined
  let dropped = false
  const output = createAsyncQueue<DeliveredEvent>(() => {
    leave?.()
    onClose()
  })
  leave = await feeds
    .join(
      { channels, from },
      {
        group: UNRENDERED,
        deliver(batch) {
          for (const event of batch) if (filter(event)) output.push(event)
          if (!dropped && output.size > MAX_QUEUED_EVENTS) {
            dropped = true
            output.fail(slowConsumer(`${MAX_QUEUED_EVENTS} events`))
            onSlowConsumer()
          }
        },
        drained: () => output.waitForRoom(MAX_PENDING_DELIVERIES),
        fail: (error) => output.fail(error),
        ...(recheck ? { recheck } : {}),
      },
    )
    .catch(async (error: unknown) => {
      await output.return()
      throw error
    })
  if (output.closed) leave()
  return output
}
