import type { Context } from '../context.js'
import { badCursor } from '../errors.js'
import { type ChannelRef, channelName } from '../events/channels.js'
import { decodeCursor } from '../events/cursor.js'
import type { EventType } from '../events/event-map.js'
import { openEventStream } from '../events/event-stream.js'
import { openSnapshotStream } from '../events/snapshot-stream.js'
import type { DeliveredEvent } from '../events/stored-event.js'
import { readerOf } from './guards.js'

export interface FollowOptions {
  /** The `after:` argument; falls back to SSE `Last-Event-ID`. */
  readonly after?: string | null | undefined
  /** Only these event types are delivered (the cursor still moves past the others). */
  readonly types?: readonly EventType[] | undefined
}

/** `stream`, telling the metrics when each event leaves it for the transport. */
function measured<T extends DeliveredEvent>(
  ctx: Context,
  stream: AsyncIterableIterator<T>,
): AsyncIterableIterator<T> {
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    async next() {
      const step = await stream.next()
      if (!step.done) ctx.services.metrics.eventStreamed(ctx, step.value.publishedAt)
      return step
    },
    return: async (value?: unknown) =>
      (await stream.return?.(value)) ?? { done: true, value: undefined },
  }
}

/**
 * Authorizes and follows `channels` for a subscription field: replay after the cursor, then
 * live. Throws before streaming when the viewer may not read them or the cursor is invalid.
 */
export async function followChannels<T extends EventType = EventType>(
  ctx: Context,
  channels: readonly ChannelRef[],
  { after, types }: FollowOptions = {},
): Promise<AsyncIterableIterator<DeliveredEvent<T>>> {
  await readerOf(ctx, channels)
  const names = channels.map(channelName)
  const cursor = after ?? ctx.lastEventId
  let from: Map<string, number> | undefined
  if (cursor) {
    const decoded = decodeCursor(cursor)
    from = new Map([...decoded].filter(([channel]) => names.includes(channel)))
    if (from.size === 0) throw badCursor('it belongs to another subscription')
  }
  const filter = types ? (event: { type: EventType }) => types.includes(event.type) : undefined
  // Access can change while a subscription runs (an order gets another courier): the feed
  // asks again when a channel signals it.
  const recheck = async () => {
    await readerOf(ctx, channels)
  }
  const onClose = ctx.services.activity.streamOpened()
  if (ctx.fanout) {
    return ctx.fanout.follow({ channels: names, from, filter, onClose, context: ctx, recheck })
  }
  const stream = await openEventStream(ctx.services, {
    channels: names,
    from,
    filter,
    onClose,
    recheck,
    // Only SSE streams through here (graphql-ws subscriptions take the fan-out above).
    onSlowConsumer: () => ctx.services.metrics.slowConsumersDropped.inc({ transport: 'sse' }),
  })
  return measured(ctx, stream as AsyncIterableIterator<DeliveredEvent<T>>)
}

/**
 * Authorizes `channel` and streams `load()`: now, then after changes, coalesced to one
 * message per configured stats interval.
 */
export async function followSnapshot<T>(
  ctx: Context,
  channel: ChannelRef,
  load: () => Promise<T>,
): Promise<AsyncIterableIterator<T>> {
  await readerOf(ctx, [channel])
  return openSnapshotStream(ctx.services.bus, {
    channel: channelName(channel),
    load,
    intervalMs: ctx.services.statsIntervalMs,
    onClose: ctx.services.activity.streamOpened(),
  })
}
