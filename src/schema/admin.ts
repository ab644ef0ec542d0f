import type { ObjectRef } from '@pothos/core'
import type { Viewer } from '../auth/viewer.js'
import type { Context, Services } from '../context.js'
import { badInput, forbidden, notFound } from '../errors.js'
import { createAsyncQueue } from '../events/async-queue.js'
import { isRole, parseChannel } from '../events/channels.js'
import type { Problem } from '../ops/recent-problems.js'
import type {
  ChannelCount,
  ConnectionView,
  OperationCount,
  Page,
  PageRequest,
  SubscriptionView,
  ViewerFilter,
} from '../transport/connection-registry.js'
import { builder } from './builder.js'
import { checkId, viewerOf } from './guards.js'
import { checkCount, nowIso } from './inputs.js'

const ACTIVITY_INTERVAL = 1_000 // ms between two `adminActivity` messages
const MAX_PAGE = 500
const MAX_REASON = 100 // characters; the reason must fit a WebSocket close frame
const PROBLEMS_SHOWN = 20
const PER_INSTANCE =
  'Of the instance that answers only: with REDIS_URL, each instance knows its own connections (there is no cluster-wide view; ask each instance).'

/** The viewer when it is an `admin`; `UNAUTHENTICATED` or `FORBIDDEN` otherwise. */
function adminOf(ctx: Context): Viewer {
  const viewer = viewerOf(ctx)
  if (viewer.role !== 'admin') throw forbidden('use the admin API (requires role admin)')
  return viewer
}

/** Checks an operator's reason: 1 to 100 characters once trimmed. */
function reasonArg(value: string): string {
  const reason = value.trim()
  if (!reason || reason.length > MAX_REASON) {
    throw badInput('reason', `expected 1 to ${MAX_REASON} characters, got ${value.length}`)
  }
  return reason
}

/** The page asked for: `first` (1-500) items after the cursor `after`. */
function pageArg(first: number | null | undefined, after: string | null | undefined): PageRequest {
  if (after != null && !/^\d{1,15}$/.test(after)) {
    throw badInput(
      'after',
      `expected an endCursor of an earlier page, got ${JSON.stringify(after)}`,
    )
  }
  return { first: checkCount('first', first ?? 25, MAX_PAGE), after: after ? Number(after) : 0 }
}

type BuilderTypes =
  typeof builder extends PothosSchemaTypes.SchemaBuilder<infer Types> ? Types : never

const SubscriptionRef = builder.objectRef<SubscriptionView>('AdminSubscription').implement({
  description: 'A live graphql-ws subscription.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The id its client gave it, unique in its connection.' }),
    connectionId: t.exposeID('connectionId'),
    user: t.exposeString('user', { description: "The token's sub." }),
    role: t.exposeString('role'),
    operationName: t.exposeString('operationName', { nullable: true }),
    rootField: t.exposeString('rootField', { description: 'e.g. parkingUpdated.' }),
    channels: t.exposeStringList('channels', {
      description: 'Channels it follows right now (none before it starts streaming).',
    }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
  }),
})

const ConnectionRef = builder.objectRef<ConnectionView>('AdminConnection').implement({
  description: 'A live graphql-ws connection whose token was accepted.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Unique across instances; pass it to disconnect.' }),
    user: t.exposeString('user', { description: "The token's sub." }),
    role: t.exposeString('role'),
    scopes: t.exposeStringList('scopes'),
    remoteAddress: t.exposeString('remoteAddress', {
      nullable: true,
      description: "The peer's address: the load balancer's when there is one.",
    }),
    forwardedFor: t.exposeString('forwardedFor', {
      nullable: true,
      description: 'X-Forwarded-For as received; informative only, a client may forge it.',
    }),
    connectedAt: t.expose('connectedAt', { type: 'DateTime' }),
    tokenExpiresAt: t.expose('tokenExpiresAt', { type: 'DateTime', nullable: true }),
    subscriptions: t.field({ type: [SubscriptionRef], resolve: (c) => [...c.subscriptions] }),
  }),
})

/** A page type with its nodes, total and cursor. */
function pageType<T>(name: string, node: ObjectRef<BuilderTypes, T>) {
  return builder.objectRef<Page<T>>(name).implement({
    description: `One page of a listing; ${PER_INSTANCE}`,
    fields: (t) => ({
      totalCount: t.exposeInt('totalCount', { description: 'Matches of the filter, all pages.' }),
      nodes: t.field({ type: [node], resolve: (page) => [...page.nodes] }),
      endCursor: t.string({
        nullable: true,
        description: 'Pass as `after` for the next page.',
        resolve: (page) => (page.endCursor === null ? null : String(page.endCursor)),
      }),
      hasNextPage: t.exposeBoolean('hasNextPage'),
    }),
  })
}
const ConnectionPageRef = pageType<ConnectionView>('AdminConnectionPage', ConnectionRef)
const SubscriptionPageRef = pageType<SubscriptionView>('AdminSubscriptionPage', SubscriptionRef)

const ChannelRef = builder.objectRef<ChannelCount>('AdminChannel').implement({
  description: 'A channel followed by subscriptions of this instance.',
  fields: (t) => ({
    channel: t.exposeString('channel'),
    subscribers: t.exposeInt('subscribers', { description: 'Subscriptions following it.' }),
  }),
})

const ChannelListRef = builder
  .objectRef<{ totalCount: number; nodes: ChannelCount[] }>('AdminChannelList')
  .implement({
    fields: (t) => ({
      totalCount: t.exposeInt('totalCount', { description: 'Channels matching the search.' }),
      nodes: t.field({ type: [ChannelRef], resolve: (list) => list.nodes }),
    }),
  })

const OperationRef = builder.objectRef<OperationCount>('AdminOperation').implement({
  description: 'Live subscriptions of one operation (name and root field).',
  fields: (t) => ({
    operationName: t.exposeString('operationName', { nullable: true }),
    rootField: t.exposeString('rootField'),
    subscriptions: t.exposeInt('subscriptions'),
  }),
})

const ProblemKindEnum = builder.enumType('AdminProblemKind', {
  values: {
    ERROR: { description: 'Anything else that went wrong (bad input, cursor, unexpected).' },
    REFUSAL: { description: 'A missing or bad token (UNAUTHENTICATED), or FORBIDDEN.' },
  },
})

const ProblemRef = builder.objectRef<Problem>('AdminProblem').implement({
  description: 'An error or refusal answered by this instance.',
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime' }),
    kind: t.field({ type: ProblemKindEnum, resolve: (problem) => problem.kind }),
    code: t.exposeString('code', { description: 'extensions.code, e.g. FORBIDDEN.' }),
    message: t.exposeString('message'),
    user: t.exposeString('user', { nullable: true }),
    operation: t.exposeString('operation', { nullable: true }),
    remoteAddress: t.exposeString('remoteAddress', { nullable: true }),
  }),
})

interface ActivityView {
  instance: string
  at: string
  connections: number
  subscriptions: number
  streams: number
  channels: number
  revision: number
  eventsPerSecond: number
  eventsPublished: number
  deliveriesPerSecond: number
  deliveries: number
  errors: number
  refusals: number
  topChannels: ChannelCount[]
  operations: OperationCount[]
  recentProblems: Problem[]
}

const round = (value: number) => Math.round(value * 100) / 100

/** This instance's aggregates now, with the `top` busiest channels and operations. */
function activityOf(services: Services, top: number): ActivityView {
  const { connections: registry, problems, publishedEvents } = services
  return {
    instance: registry.instance,
    at: nowIso(),
    ...registry.counts(),
    streams: services.activity.openStreams(),
    eventsPerSecond: round(publishedEvents.perSecond()),
    eventsPublished: publishedEvents.total,
    deliveriesPerSecond: round(registry.deliveries.perSecond()),
    deliveries: registry.deliveries.total,
    ...problems.totals(),
    topChannels: registry.channels(top).nodes,
    operations: registry.operations(top),
    recentProblems: problems.list(PROBLEMS_SHOWN),
  }
}

const ActivityRef = builder.objectRef<ActivityView>('AdminActivity').implement({
  description: `Live aggregates. ${PER_INSTANCE}`,
  fields: (t) => ({
    instance: t.exposeString('instance', { description: 'Which instance answered (host:pid).' }),
    at: t.expose('at', { type: 'DateTime' }),
    connections: t.exposeInt('connections', { description: 'Open graphql-ws connections.' }),
    subscriptions: t.exposeInt('subscriptions', { description: 'Their live subscriptions.' }),
    streams: t.exposeInt('streams', {
      description: 'Event and stats streams open on every transport, SSE included.',
    }),
    channels: t.exposeInt('channels', { description: 'Distinct channels they follow.' }),
    revision: t.exposeInt('revision', {
      description: 'Changes whenever a connection, subscription or followed channel does.',
    }),
    eventsPerSecond: t.exposeFloat('eventsPerSecond', {
      description: 'Events published through this instance, per second over the last 5 s.',
    }),
    eventsPublished: t.exposeInt('eventsPublished', { description: 'The same, since start.' }),
    deliveriesPerSecond: t.exposeFloat('deliveriesPerSecond', {
      description: 'Events the bus handed to graphql-ws subscriptions here, per second (5 s).',
    }),
    deliveries: t.exposeInt('deliveries', { description: 'The same, since start.' }),
    errors: t.exposeInt('errors', { description: 'Errors answered since start.' }),
    refusals: t.exposeInt('refusals', { description: 'Refusals answered since start.' }),
    topChannels: t.field({ type: [ChannelRef], resolve: (activity) => activity.topChannels }),
    operations: t.field({ type: [OperationRef], resolve: (activity) => activity.operations }),
    recentProblems: t.field({
      type: [ProblemRef],
      description: `The last ${PROBLEMS_SHOWN} errors and refusals, newest first.`,
      resolve: (activity) => activity.recentProblems,
    }),
  }),
})

const AdminFilter = builder.inputType('AdminFilter', {
  description: 'Keeps connections (or subscriptions, by their connection) matching every field.',
  fields: (t) => ({
    user: t.string({ description: 'Exactly this token sub.' }),
    role: t.string({ description: 'admin, service, operator, seller, client or delivery.' }),
    scope: t.string({ description: 'Tokens carrying this scope, e.g. lot:42.' }),
    search: t.string({ description: 'Part of the user, connection id or address.' }),
  }),
})

/** The registry filter from the `filter` argument; `BAD_USER_INPUT` for an unknown role. */
function filterArg(
  filter: { [K in keyof ViewerFilter]?: string | null | undefined } | null | undefined,
): ViewerFilter {
  if (filter?.role != null && !isRole(filter.role)) {
    throw badInput(
      'filter.role',
      `expected a role, got ${JSON.stringify(filter.role.slice(0, 40))}`,
    )
  }
  return {
    user: filter?.user ?? undefined,
    role: filter?.role ?? undefined,
    scope: filter?.scope ?? undefined,
    search: filter?.search ?? undefined,
  }
}

const TOP_ARG = { defaultValue: 10, description: 'How many channels and operations (1-100).' }

builder.queryFields((t) => ({
  adminConnections: t.field({
    type: ConnectionPageRef,
    description: `Live graphql-ws connections, oldest first (admin only). ${PER_INSTANCE}`,
    args: {
      filter: t.arg({ type: AdminFilter }),
      first: t.arg.int({ defaultValue: 25, description: `Page size (1-${MAX_PAGE}).` }),
      after: t.arg.string({ description: 'endCursor of the previous page.' }),
    },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      return ctx.services.connections.connections(
        filterArg(args.filter),
        pageArg(args.first, args.after),
      )
    },
  }),
  adminSubscriptions: t.field({
    type: SubscriptionPageRef,
    description: `Live graphql-ws subscriptions, oldest first (admin only). ${PER_INSTANCE}`,
    args: {
      filter: t.arg({ type: AdminFilter }),
      channel: t.arg.string({ description: 'Only those following this channel.' }),
      rootField: t.arg.string({ description: 'Only this root field, e.g. parkingUpdated.' }),
      first: t.arg.int({ defaultValue: 25, description: `Page size (1-${MAX_PAGE}).` }),
      after: t.arg.string({ description: 'endCursor of the previous page.' }),
    },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      return ctx.services.connections.subscriptions(
        {
          ...filterArg(args.filter),
          channel: args.channel ?? undefined,
          rootField: args.rootField ?? undefined,
        },
        pageArg(args.first, args.after),
      )
    },
  }),
  adminChannels: t.field({
    type: ChannelListRef,
    description: `Followed channels, most subscribers first (admin only). ${PER_INSTANCE}`,
    args: {
      first: t.arg.int({ defaultValue: 20, description: `How many (1-${MAX_PAGE}).` }),
      search: t.arg.string({ description: 'Part of the channel name.' }),
    },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      const first = checkCount('first', args.first ?? 20, MAX_PAGE)
      return ctx.services.connections.channels(first, args.search ?? undefined)
    },
  }),
  adminOperations: t.field({
    type: [OperationRef],
    description: `Live subscriptions per operation, most first (admin only). ${PER_INSTANCE}`,
    args: { first: t.arg.int({ defaultValue: 20, description: `How many (1-${MAX_PAGE}).` }) },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      return ctx.services.connections.operations(checkCount('first', args.first ?? 20, MAX_PAGE))
    },
  }),
  adminActivity: t.field({
    type: ActivityRef,
    description: 'The aggregates `adminActivity` streams, once (admin only).',
    args: { top: t.arg.int(TOP_ARG) },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      return activityOf(ctx.services, checkCount('top', args.top ?? 10, 100))
    },
  }),
}))

const REASON_ARG = {
  required: true,
  description: `Shown to the clients affected (1-${MAX_REASON} characters).`,
} as const

builder.mutationFields((t) => ({
  disconnectConnection: t.int({
    description: `Closes a graphql-ws connection with code 4410 and "Disconnected by an operator: <reason>"; its client may reconnect (admin only). Returns 1; NOT_FOUND when the connection is not on this instance. ${PER_INSTANCE}`,
    args: { id: t.arg.id({ required: true }), reason: t.arg.string(REASON_ARG) },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      const reason = reasonArg(args.reason)
      if (!ctx.services.connections.disconnect(String(args.id), reason)) {
        throw notFound(`connection "${String(args.id).slice(0, 40)}" on this instance`)
      }
      return 1
    },
  }),
  disconnectUser: t.int({
    description: `Closes every graphql-ws connection of a user (token sub) like disconnectConnection; returns how many (admin only). ${PER_INSTANCE}`,
    args: { user: t.arg.string({ required: true }), reason: t.arg.string(REASON_ARG) },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      return ctx.services.connections.disconnectUser(args.user, reasonArg(args.reason))
    },
  }),
  revokeUserTokens: t.field({
    type: 'DateTime',
    description:
      'Revokes every token of a user (token sub) issued until now, on every instance: such tokens are refused from here on (UNAUTHENTICATED "token revoked"), and the user\'s open graphql-ws connections close with 4403 "Forbidden: token revoked: <reason>", which clients retry with a fresh token (one issued at least a second later). Returns when tokens count as revoked (admin only).',
    args: { user: t.arg.string({ required: true }), reason: t.arg.string(REASON_ARG) },
    resolve: async (_root, args, ctx) => {
      adminOf(ctx)
      const user = checkId('user', args.user)
      const { revokedBefore } = await ctx.services.revocations.revoke(user, reasonArg(args.reason))
      return revokedBefore
    },
  }),
  closeChannelSubscriptions: t.int({
    description: `Ends every graphql-ws subscription following a channel with a CLOSED_BY_OPERATOR error carrying the reason; their connections stay open. Returns how many (admin only). ${PER_INSTANCE}`,
    args: {
      channel: t.arg.string({ required: true, description: 'e.g. lot:42:parking.' }),
      reason: t.arg.string(REASON_ARG),
    },
    resolve: (_root, args, ctx) => {
      adminOf(ctx)
      const reason = reasonArg(args.reason)
      if (!parseChannel(args.channel)) {
        throw badInput('channel', `not a channel: ${JSON.stringify(args.channel.slice(0, 80))}`)
      }
      return ctx.services.connections.closeChannel(args.channel, reason)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  adminActivity: t.field({
    type: ActivityRef,
    description: `This instance's aggregates now, then about once a second (admin only). ${PER_INSTANCE}`,
    args: { top: t.arg.int(TOP_ARG) },
    subscribe: (_root, args, ctx) => {
      adminOf(ctx)
      const top = checkCount('top', args.top ?? 10, 100)
      const closeStream = ctx.services.activity.streamOpened()
      const queue = createAsyncQueue<ActivityView>(() => {
        clearInterval(timer)
        closeStream()
      })
      // A reader that falls behind gets the latest aggregates, not a backlog of old ones.
      let unread = false
      const push = () => {
        if (unread) return
        unread = true
        queue.push(activityOf(ctx.services, top))
        void queue.waitForRoom(1).then(() => {
          unread = false
        })
      }
      const timer = setInterval(push, ACTIVITY_INTERVAL)
      push()
      return queue
    },
    resolve: (activity) => activity,
  }),
}))
