import { badInput } from '../errors.js'
import { parseChannel, SIGNAL_KINDS } from '../events/channels.js'
import { readLatestEvents } from '../events/event-log.js'
import type { StoredEvent } from '../events/stored-event.js'
import { builder } from './builder.js'
import { readerOf } from './guards.js'

const MAX_RECENT_EVENTS = 500

const LoggedEvent = builder.objectRef<StoredEvent>('LoggedEvent').implement({
  description: 'An event as the log holds it, with its data as JSON.',
  fields: (t) => ({
    channel: t.exposeString('channel'),
    seq: t.exposeInt('seq'),
    type: t.exposeString('type', { description: 'Event type, e.g. parking.spaceChanged.' }),
    data: t.field({ type: 'JSON', resolve: (event) => event.data as never }),
    publishedAt: t.expose('publishedAt', { type: 'DateTime' }),
  }),
})

builder.queryFields((t) => ({
  recentEvents: t.field({
    type: [LoggedEvent],
    description: 'The newest events of a channel the viewer may read, oldest first.',
    args: {
      channel: t.arg.string({
        required: true,
        description: 'A channel name, e.g. lot:42:parking.',
      }),
      last: t.arg.int({ defaultValue: 50, description: `How many (1-${MAX_RECENT_EVENTS}).` }),
    },
    resolve: async (_root, args, ctx) => {
      const channel = parseChannel(args.channel)
      if (!channel || SIGNAL_KINDS.has(channel.kind)) {
        throw badInput(
          'channel',
          `not a channel with a log: ${JSON.stringify(args.channel.slice(0, 80))}`,
        )
      }
      const last = args.last ?? 50
      if (!(last >= 1 && last <= MAX_RECENT_EVENTS)) {
        throw badInput('last', `expected 1 to ${MAX_RECENT_EVENTS}, got ${last}`)
      }
      await readerOf(ctx, [channel])
      return readLatestEvents(ctx.services.db, args.channel, last)
    },
  }),
}))
