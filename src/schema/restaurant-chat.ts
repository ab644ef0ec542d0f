import { randomUUID } from 'node:crypto'
import { canRead } from '../auth/channel-access.js'
import {
  type ChatMessage,
  insertChatMessage,
  listChatMessages,
} from '../db/projections/restaurant-chat.js'
import { badInput, forbidden } from '../errors.js'
import { type ChannelRef, channelName } from '../events/channels.js'
import { encodeCursor } from '../events/cursor.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, toEventView } from './event-interface.js'
import { readerOf, viewerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { AFTER_DESCRIPTION, checkCount, idArg, nowIso } from './inputs.js'
import { followRestaurant, requireRestaurant } from './reservations.js'

const chatChannel = (restaurantId: string, clientId: string): ChannelRef => ({
  kind: 'restaurantChat',
  restaurantId,
  clientId,
})

const MAX_CHAT_BODY = 2_000 // characters
const MAX_CHAT_HISTORY = 500

const RestaurantChatMessage = builder
  .objectRef<EventView<'restaurant.chatMessage'>>('RestaurantChatMessage')
  .implement({
    description: 'A message in the chat between one client and a restaurant.',
    interfaces: [EventInterface],
    fields: (t) => ({
      restaurantId: t.exposeID('restaurantId'),
      clientId: t.exposeID('clientId', { description: 'The client whose chat this is.' }),
      messageId: t.exposeID('messageId'),
      fromUserId: t.exposeID('fromUserId', { description: "The sender's token `sub`." }),
      fromRole: t.exposeString('fromRole', { description: "The sender's token role." }),
      body: t.exposeString('body'),
      sentAt: t.expose('sentAt', { type: 'DateTime' }),
    }),
  })

/** A kept chat message as the event that carried it, with the cursor to resume after it. */
function toChatView(message: ChatMessage): EventView<'restaurant.chatMessage'> {
  const { seq, publishedAt, ...data } = message
  const channel = channelName(chatChannel(message.restaurantId, message.clientId))
  const cursor = encodeCursor(new Map([[channel, seq]]))
  return { ...data, eventType: 'restaurant.chatMessage', channel, seq, cursor, publishedAt }
}

builder.queryFields((t) => ({
  chatHistory: t.field({
    type: [RestaurantChatMessage],
    description: 'The newest messages of a client-restaurant chat, oldest first, with cursors.',
    args: {
      restaurantId: t.arg.id({ required: true }),
      clientId: t.arg.id({ required: true }),
      last: t.arg.int({ defaultValue: 50, description: `How many (1-${MAX_CHAT_HISTORY}).` }),
    },
    resolve: async (_root, args, ctx) => {
      const restaurantId = idArg('restaurantId', args.restaurantId)
      const clientId = idArg('clientId', args.clientId)
      const last = checkCount('last', args.last ?? 50, MAX_CHAT_HISTORY)
      await readerOf(ctx, [chatChannel(restaurantId, clientId)])
      await requireRestaurant(ctx.services.db, restaurantId)
      const messages = await listChatMessages(ctx.services.db, restaurantId, clientId, last)
      return messages.map(toChatView)
    },
  }),
}))

const SendChatMessageInput = builder.inputType('SendChatMessageInput', {
  fields: (t) => ({
    restaurantId: t.id({ required: true }),
    clientId: t.id({ required: true, description: 'The client whose chat this is.' }),
    body: t.string({ required: true, description: `1-${MAX_CHAT_BODY} characters.` }),
  }),
})

builder.mutationFields((t) => ({
  sendChatMessage: t.field({
    type: RestaurantChatMessage,
    description:
      'Sends a message in a client-restaurant chat, as that client, the restaurant staff or a backend.',
    args: { input: t.arg({ type: SendChatMessageInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      const viewer = viewerOf(ctx)
      const restaurantId = idArg('input.restaurantId', input.restaurantId)
      const clientId = idArg('input.clientId', input.clientId)
      const channel = chatChannel(restaurantId, clientId)
      // Whoever may read a chat takes part in it: the client, the restaurant, backends.
      if (!(await canRead(viewer, channel, ctx.services.lookups))) {
        throw forbidden('send messages in this chat')
      }
      const length = [...input.body].length
      if (!input.body.trim() || length > MAX_CHAT_BODY) {
        throw badInput('input.body', `expected 1 to ${MAX_CHAT_BODY} characters, got ${length}`)
      }
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireRestaurant(scope.tx, restaurantId)
        const appended = await scope.append(channel, 'restaurant.chatMessage', {
          restaurantId,
          clientId,
          messageId: randomUUID(),
          fromUserId: viewer.sub,
          fromRole: viewer.role,
          body: input.body,
          sentAt: nowIso(),
        })
        const { seq, publishedAt } = appended
        await insertChatMessage(scope.tx, { ...appended.data, seq, publishedAt })
        return appended
      })
      return toEventView(event)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  chatMessage: t.field({
    type: RestaurantChatMessage,
    description: 'Messages of one client-restaurant chat, resumable with `after`.',
    args: {
      restaurantId: t.arg.id({ required: true }),
      clientId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: (_root, args, ctx) => {
      const restaurantId = idArg('restaurantId', args.restaurantId)
      const clientId = idArg('clientId', args.clientId)
      return followRestaurant<'restaurant.chatMessage'>(
        ctx,
        restaurantId,
        chatChannel(restaurantId, clientId),
        { after: args.after },
      )
    },
    resolve: (event) => toEventView(event),
  }),
}))
