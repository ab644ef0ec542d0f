import { randomUUID } from 'node:crypto'
import type { Viewer } from '../auth/viewer.js'
import {
  countUnread,
  type InboxItem,
  type InboxOwner,
  type InboxPosition,
  insertNotification,
  listInbox,
  markAllRead,
  markRead,
  type Notification,
} from '../db/projections/notifications.js'
import { badCursor, badInput, notFound } from '../errors.js'
import { type ChannelRef, isRole, ROLES } from '../events/channels.js'
import { ALERT_LEVELS, NOTIFICATION_AUDIENCES } from '../events/event-map.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, toEventView } from './event-interface.js'
import { publisherOf, viewerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { checkJsonSize, idArg, MAX_JSON_BYTES } from './inputs.js'
import { followChannels } from './streams.js'

const MAX_TITLE_LENGTH = 200
const MAX_BODY_LENGTH = 4_000
const MAX_PAGE_SIZE = 100
const INBOX_CURSOR_PREFIX = 'i1.'

/** The three channels a viewer's notifications arrive on. */
const viewerChannels = (viewer: Viewer): ChannelRef[] => [
  { kind: 'userNotifications', userId: viewer.sub },
  { kind: 'roleNotifications', role: viewer.role },
  { kind: 'broadcastNotifications' },
]

const ownerOf = (viewer: Viewer): InboxOwner => ({ userId: viewer.sub, role: viewer.role })

/** Inbox page cursors are opaque (`i1.` + base64url JSON) and distinct from event cursors. */
function encodeInboxCursor(position: InboxPosition): string {
  const json = JSON.stringify([position.createdAt, position.id])
  return `${INBOX_CURSOR_PREFIX}${Buffer.from(json).toString('base64url')}`
}

function decodeInboxCursor(cursor: string): InboxPosition {
  if (!cursor.startsWith(INBOX_CURSOR_PREFIX) || cursor.length > 512) {
    throw badCursor('not an inbox cursor')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(
      Buffer.from(cursor.slice(INBOX_CURSOR_PREFIX.length), 'base64url').toString('utf8'),
    )
  } catch {
    throw badCursor('not decodable')
  }
  const [createdAt, id] = Array.isArray(parsed) ? parsed : []
  if (
    typeof createdAt !== 'string' ||
    Number.isNaN(Date.parse(createdAt)) ||
    typeof id !== 'string'
  ) {
    throw badCursor('not decodable')
  }
  return { createdAt, id }
}

const NotificationAudienceEnum = builder.enumType('NotificationAudience', {
  values: NOTIFICATION_AUDIENCES,
})
const NotificationLevelEnum = builder.enumType('NotificationLevel', { values: ALERT_LEVELS })

const NotificationSent = builder
  .objectRef<EventView<'notification.sent'>>('NotificationSent')
  .implement({
    description: 'A notification sent to one user, a role or everyone.',
    interfaces: [EventInterface],
    fields: (t) => ({
      notificationId: t.exposeID('notificationId', {
        description: 'Pass to `markNotificationRead`.',
      }),
      audience: t.expose('audience', { type: NotificationAudienceEnum }),
      target: t.exposeString('target', {
        nullable: true,
        description: 'The user id or role it is addressed to; null for everyone.',
      }),
      title: t.exposeString('title'),
      body: t.exposeString('body'),
      level: t.expose('level', { type: NotificationLevelEnum }),
      data: t.expose('data', { type: 'JSON', nullable: true }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  })

const InboxItemRef = builder.objectRef<InboxItem>('InboxItem').implement({
  description: "A notification in the viewer's inbox, with whether the viewer read it.",
  fields: (t) => ({
    id: t.exposeID('id'),
    audience: t.expose('audience', { type: NotificationAudienceEnum }),
    title: t.exposeString('title'),
    body: t.exposeString('body'),
    level: t.expose('level', { type: NotificationLevelEnum }),
    data: t.expose('data', { type: 'JSON', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    read: t.boolean({ resolve: (item) => item.readAt !== null }),
    readAt: t.expose('readAt', { type: 'DateTime', nullable: true }),
  }),
})

interface InboxPage {
  readonly owner: InboxOwner
  readonly items: readonly InboxItem[]
  readonly nextCursor: string | null
}

const InboxRef = builder.objectRef<InboxPage>('Inbox').implement({
  description: "A page of the viewer's notifications, newest first.",
  fields: (t) => ({
    unreadCount: t.int({
      description: 'Unread notifications in the whole inbox, not only this page.',
      resolve: (page, _args, ctx) => countUnread(ctx.services.db, page.owner),
    }),
    items: t.field({ type: [InboxItemRef], resolve: (page) => [...page.items] }),
    nextCursor: t.exposeString('nextCursor', {
      nullable: true,
      description: 'Pass as `after` for the next (older) page; null on the last page.',
    }),
  }),
})

builder.queryFields((t) => ({
  inbox: t.field({
    type: InboxRef,
    description: "The viewer's notifications (to them, their role or everyone), newest first.",
    args: {
      unreadOnly: t.arg.boolean({ defaultValue: false }),
      first: t.arg.int({ defaultValue: 20, description: `Page size (1-${MAX_PAGE_SIZE}).` }),
      after: t.arg.string({ description: '`nextCursor` of the previous page.' }),
    },
    resolve: async (_root, args, ctx) => {
      const owner = ownerOf(viewerOf(ctx))
      const first = args.first ?? 20
      if (!(first >= 1 && first <= MAX_PAGE_SIZE)) {
        throw badInput('first', `expected 1 to ${MAX_PAGE_SIZE}, got ${first}`)
      }
      // One extra row tells whether an older page exists.
      const rows = await listInbox(ctx.services.db, owner, {
        unreadOnly: args.unreadOnly ?? false,
        limit: first + 1,
        before: args.after ? decodeInboxCursor(args.after) : undefined,
      })
      const items = rows.slice(0, first)
      const last = items.at(-1)
      const nextCursor = rows.length > first && last ? encodeInboxCursor(last) : null
      return { owner, items, nextCursor }
    },
  }),
}))

const SendNotificationInput = builder.inputType('SendNotificationInput', {
  description: 'Exactly one of `userId`, `role` or `everyone: true` says who gets it.',
  fields: (t) => ({
    userId: t.id({ description: 'One user, by token `sub`.' }),
    role: t.string({ description: `Everyone with this role: ${ROLES.join(', ')}.` }),
    everyone: t.boolean({ description: 'Everyone.' }),
    title: t.string({ required: true, description: `1 to ${MAX_TITLE_LENGTH} characters.` }),
    body: t.string({ required: true, description: `Up to ${MAX_BODY_LENGTH} characters.` }),
    level: t.field({ type: NotificationLevelEnum, defaultValue: 'INFO' }),
    data: t.field({
      type: 'JSON',
      description: `Any JSON for the client, at most ${MAX_JSON_BYTES} bytes serialized.`,
    }),
  }),
})

interface Addressee extends Pick<Notification, 'audience' | 'target'> {
  /** The channel the notification is published on. */
  readonly channel: ChannelRef
}

/** Who a send is for, from exactly one of its three target fields. */
function addresseeOf(input: {
  userId?: string | number | null | undefined
  role?: string | null | undefined
  everyone?: boolean | null | undefined
}): Addressee {
  const given = [input.userId != null, input.role != null, input.everyone === true]
  if (given.filter(Boolean).length !== 1) {
    throw badInput('input', 'give exactly one of userId, role or everyone: true')
  }
  if (input.userId != null) {
    const userId = idArg('input.userId', input.userId)
    return { audience: 'USER', target: userId, channel: { kind: 'userNotifications', userId } }
  }
  if (input.role != null) {
    const role = input.role
    if (!isRole(role)) {
      throw badInput(
        'input.role',
        `expected one of ${ROLES.join(', ')}, got ${JSON.stringify(role.slice(0, 40))}`,
      )
    }
    return { audience: 'ROLE', target: role, channel: { kind: 'roleNotifications', role } }
  }
  return { audience: 'EVERYONE', target: null, channel: { kind: 'broadcastNotifications' } }
}

builder.mutationFields((t) => ({
  sendNotification: t.field({
    type: NotificationSent,
    description: 'Stores a notification in the inbox of its audience and publishes it live.',
    args: { input: t.arg({ type: SendNotificationInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const title = input.title.trim()
      if (!title) throw badInput('input.title', 'must not be empty')
      if (title.length > MAX_TITLE_LENGTH) {
        throw badInput(
          'input.title',
          `expected at most ${MAX_TITLE_LENGTH} characters, got ${title.length}`,
        )
      }
      if (input.body.length > MAX_BODY_LENGTH) {
        throw badInput(
          'input.body',
          `expected at most ${MAX_BODY_LENGTH} characters, got ${input.body.length}`,
        )
      }
      const { channel, ...addressee } = addresseeOf(input)
      const notification: Notification = {
        id: randomUUID(),
        ...addressee,
        title,
        body: input.body,
        level: input.level ?? 'INFO',
        data: checkJsonSize('input.data', input.data),
        createdAt: new Date().toISOString(),
      }
      const { id, ...rest } = notification
      const event = await publishOnce(ctx, info, async (scope) => {
        await insertNotification(scope.tx, notification)
        return scope.append(channel, 'notification.sent', {
          notificationId: id,
          ...rest,
        })
      })
      return toEventView(event)
    },
  }),
  markNotificationRead: t.field({
    type: InboxItemRef,
    description: "Marks a notification of the viewer's inbox read; repeating it changes nothing.",
    args: { notificationId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const owner = ownerOf(viewerOf(ctx))
      const notificationId = String(args.notificationId)
      const item = await ctx.services.db.transaction((tx) =>
        markRead(tx, owner, notificationId, new Date().toISOString()),
      )
      if (!item) throw notFound(`notification "${notificationId.slice(0, 128)}"`)
      return item
    },
  }),
  markAllNotificationsRead: t.int({
    description:
      "Marks every notification of the viewer's inbox read; returns how many were unread.",
    resolve: async (_root, _args, ctx) => {
      const owner = ownerOf(viewerOf(ctx))
      return markAllRead(ctx.services.db, owner, new Date().toISOString())
    },
  }),
}))

builder.subscriptionFields((t) => ({
  notification: t.field({
    type: NotificationSent,
    description:
      'Notifications to the viewer, their role and everyone, in one stream; `after` replays what was missed on all three.',
    args: {
      after: t.arg.string({
        description: 'Cursor of the last notification received; replays what followed.',
      }),
    },
    subscribe: (_root, args, ctx) =>
      followChannels<'notification.sent'>(ctx, viewerChannels(viewerOf(ctx)), {
        after: args.after,
      }),
    resolve: (event) => toEventView(event),
  }),
}))
