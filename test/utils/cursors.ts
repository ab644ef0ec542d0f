import { type ChannelRef, channelName } from '../../src/events/channels.js'
import { encodeCursor } from '../../src/events/cursor.js'

/** A cursor positioned at `seq` in each channel given. */
export function cursorAt(...positions: Array<[ChannelRef | string, number]>): string {
  return encodeCursor(
    new Map(
      positions.map(([channel, seq]) => [
        typeof channel === 'string' ? channel : channelName(channel),
        seq,
      ]),
    ),
  )
}

/**
 * A cursor before the first event of each channel: a subscription given it replays the whole
 * channel, so a test sees every event however soon after subscribing it publishes.
 */
export function fromStart(...channels: Array<ChannelRef | string>): string {
  return cursorAt(...channels.map((channel): [ChannelRef | string, number] => [channel, 0]))
}
