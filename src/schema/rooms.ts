import { badInput } from '../errors.js'
import { type ChannelRef, channelName } from '../events/channels.js'
import { encodeCursor } from '../events/cursor.js'
import { readLatestEvents } from '../events/event-log.js'
import type { Json } from '../events/event-map.js'
import type { StoredEvent } from '../events/stored-event.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, toEventView } from './event-interface.js'
import { checkId, readerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { checkJsonSize, MAX_JSON_BYTES } from './inputs.js'
import { followChannels } from './streams.js'

const roomChannel = (room: string): ChannelRef => ({ kind: 'room', room })

const MAX_BODY_LENGTH = 4_000
const MAX_HISTORY = 500
const MAX_BATCH = 1_000

const RoomMessage = builder.objectRef<EventView<'room.message'>>('RoomMessage').implement({
  description: 'A message in a room, in the envelope {from, room, ts, body, meta}.',
  interfaces: [EventInterface],
  fields: (t) => ({
    from: t.exposeID('from', { description: 'The `sub` of the token that sent it.' }),
    room: t.exposeString('room'),
    ts: t.expose('ts', { type: 'DateTime', description: 'When the gateway accepted it.' }),
    body: t.exposeString('body'),
    meta: t.expose('meta', {
      type: 'JSON',
      nullable: true,
      description: 'Whatever JSON the sender attached.',
    }),
  }),
})

/** A logged room message with the cursor to follow the room from right after it. */
function toHistoryView(event: StoredEvent<'room.message'>): EventView<'room.message'> {
  return toEventView({ ...event, cursor: encodeCursor(new Map([[event.channel, event.seq]])) })
}

builder.queryFields((t) => ({
  roomHistory: t.field({
    type: [RoomMessage],
    description:
      "A room's latest messages, oldest first; the last one's cursor resumes `roomMessage` right after it.",
    args: {
      room: t.arg.string({ required: true }),
      last: t.arg.int({ defaultValue: 50, description: `How many (1-${MAX_HISTORY}).` }),
    },
    resolve: async (_root, args, ctx) => {
      const room = checkId('room', args.room)
      const last = args.last ?? 50
      if (!(last >= 1 && last <= MAX_HISTORY)) {
        throw badInput('last', `expected 1 to ${MAX_HISTORY}, got ${last}`)
      }
      await readerOf(ctx, [roomChannel(room)])
      const events = await readLatestEvents(ctx.services.db, channelName(roomChannel(room)), last)
      // Only rooms ever get room events, so the cast names what the channel holds.
      return events.map((event) => toHistoryView(event as StoredEvent<'room.message'>))
    },
  }),
}))

const SendRoomMessageInput = builder.inputType('SendRoomMessageInput', {
  fields: (t) => ({
    room: t.string({ required: true }),
    body: t.string({ required: true, description: `1 to ${MAX_BODY_LENGTH} characters.` }),
    meta: t.field({
      type: 'JSON',
      description: `Any JSON, at most ${MAX_JSON_BYTES} bytes serialized.`,
    }),
  }),
})

/** A message's body and meta, checked; `field` names the input for errors. */
function checkMessage(
  field: string,
  body: string,
  meta: Json | null | undefined,
): { body: string; meta: Json } {
  if (!body.trim()) throw badInput(`${field}.body`, 'must not be empty')
  if (body.length > MAX_BODY_LENGTH) {
    throw badInput(
      `${field}.body`,
      `expected at most ${MAX_BODY_LENGTH} characters, got ${body.length}`,
    )
  }
  return { body, meta: checkJsonSize(`${field}.meta`, meta) }
}

const RoomMessageDraft = builder.inputType('RoomMessageDraft', {
  description: 'One message of a batch sent to a room.',
  fields: (t) => ({
    body: t.string({ required: true, description: `1 to ${MAX_BODY_LENGTH} characters.` }),
    meta: t.field({
      type: 'JSON',
      description: `Any JSON, at most ${MAX_JSON_BYTES} bytes serialized.`,
    }),
  }),
})

const SendRoomMessagesInput = builder.inputType('SendRoomMessagesInput', {
  fields: (t) => ({
    room: t.string({ required: true }),
    messages: t.field({
      type: [RoomMessageDraft],
      required: true,
      description: `1 to ${MAX_BATCH} messages, appended in this order.`,
    }),
  }),
})

builder.mutationFields((t) => ({
  sendRoomMessage: t.field({
    type: RoomMessage,
    description: 'Sends a message to a room the viewer may read; `from` is the token subject.',
    args: { input: t.arg({ type: SendRoomMessageInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      const room = checkId('input.room', input.room)
      const viewer = await readerOf(ctx, [roomChannel(room)])
      const { body, meta } = checkMessage('input', input.body, input.meta)
      const event = await publishOnce(ctx, info, (scope) =>
        scope.append(roomChannel(room), 'room.message', {
          from: viewer.sub,
          room,
          ts: new Date().toISOString(),
          body,
          meta,
        }),
      )
      return toEventView(event)
    },
  }),
  sendRoomMessages: t.field({
    type: [RoomMessage],
    description:
      'Sends several messages to a room in one durable append (bulk import, replays from another system): all or none; `from` is the token subject.',
    args: { input: t.arg({ type: SendRoomMessagesInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      const room = checkId('input.room', input.room)
      const viewer = await readerOf(ctx, [roomChannel(room)])
      const count = input.messages.length
      if (count < 1 || count > MAX_BATCH) {
        throw badInput('input.messages', `expected 1 to ${MAX_BATCH} messages, got ${count}`)
      }
      const messages = input.messages.map((draft, index) =>
        checkMessage(`input.messages[${index}]`, draft.body, draft.meta),
      )
      const events = await publishOnce(ctx, info, async (scope) => {
        const ts = new Date().toISOString()
        return scope.appendAll(
          roomChannel(room),
          'room.message',
          messages.map(({ body, meta }) => ({ from: viewer.sub, room, ts, body, meta })),
        )
      })
      return events.map(toEventView)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  roomMessage: t.field({
    type: RoomMessage,
    description: "A room's messages, resumable with `after`.",
    args: {
      room: t.arg.string({ required: true }),
      after: t.arg.string({
        description: 'Cursor of the last message received; replays what followed.',
      }),
    },
    subscribe: (_root, args, ctx) => {
      const room = checkId('room', args.room)
      return followChannels<'room.message'>(ctx, [roomChannel(room)], { after: args.after })
    },
    resolve: (event) => toEventView(event),
  }),
}))
