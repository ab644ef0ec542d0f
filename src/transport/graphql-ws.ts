import type { IncomingMessage, Server } from 'node:http'
import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  getOperationAST,
  getVariableValues,
  subscribe as graphqlSubscribe,
} from 'graphql'
import {
  CloseCode,
  handleProtocols,
  makeServer,
  type SubscribePayload,
  type Context as WsContext,
} from 'graphql-ws'
import { isAsyncIterable, type YogaServerInstance } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import { extractToken } from '../auth/extract-token.js'
import type { TokenVerifier } from '../auth/verify-token.js'
import type { Viewer } from '../auth/viewer.js'
import type { Limits } from '../config.js'
import type { ChannelFanout, ConnectionHandle } from '../context.js'
import { forbidden, limitExceeded } from '../errors.js'
import type { FeedHub } from '../events/channel-feed.js'
import { type Logger, newConnectionId } from '../ops/logger.js'
import type { Metrics } from '../ops/metrics.js'
import { labelOperation } from '../ops/operation-label.js'
import { type RecentProblems, recordOperationErrors } from '../ops/recent-problems.js'
import type {
  ConnectionRegistry,
  TrackedConnection,
  TrackedSubscription,
} from './connection-registry.js'
import { onEnd } from './endable-stream.js'
import type { QuotaKey, Quotas } from './quotas.js'
import { createSharedExecutions } from './shared-executions.js'
import { createSocketFanout, type SocketFanout } from './socket-fanout.js'
import { closeSocket, type SocketExtra, type SocketLimits, serveSockets } from './ws-sockets.js'

/** Close codes Switchboard uses beside graphql-ws's own (see also `SOCKET_CLOSE`). */
export const WS_CLOSE = {
  /** Token expired or revoked (at connect or while connected): the graphql-ws client retries. */
  TOKEN_EXPIRED: CloseCode.Forbidden,
  /** No token or an invalid one: retrying with the same token cannot help, so it is fatal. */
  UNAUTHORIZED: CloseCode.Unauthorized,
  /** Server going away (shutdown): clients reconnect elsewhere. */
  GOING_AWAY: 1001,
  /** This instance holds its maximum of connections: the client retries (another instance). */
  AT_CAPACITY: 1013,
  /** The user or a tenant of the token holds its maximum of connections; the client retries. */
  QUOTA_EXCEEDED: 4029,
} as const

const CLOSE_GRACE = 2_000 // ms a closing peer gets to answer before its socket is cut

// setTimeout cannot wait longer than 2^31-1 ms; longer lifetimes re-arm.
const MAX_TIMER_DELAY = 2_147_483_647 // ms

/** Limits the WebSocket transport enforces (documented with their variables on `Limits`). */
export type WsLimits = SocketLimits &
  Pick<
    Limits,
    | 'maxConnections'
    | 'maxConnectionsPerUser'
    | 'maxConnectionsPerTenant'
    | 'maxSubscriptionsPerConnection'
    | 'maxSubscriptionsPerTenant'
    | 'initTimeoutMs'
    | 'maxMessageBytes'
  >

/** What an operation's context over a WebSocket is made of (see `webSocketContext`). */
export interface WebSocketContextParts {
  readonly viewer: Viewer | null
  /** The admin registry's record of the subscription (subscriptions only). */
  readonly trackedSubscription?: TrackedSubscription | undefined
  /** Where the subscription hands the channels it follows (subscriptions only). */
  readonly fanout?: ChannelFanout | undefined
  /** What the operation may do to its connection (refresh the token). */
  readonly connection?: ConnectionHandle | undefined
}

/** What the WebSocket transport tells about itself. */
export interface WsTransport {
  /** Open sockets. */
  connectionCount(): number
  /** Closes every socket with `code` and stops accepting new ones. */
  close(code?: number, reason?: string): Promise<void>
}

export interface WsTransportOptions {
  readonly server: Server
  readonly path: string
  // biome-ignore lint/suspicious/noExplicitAny: Yoga's instance is generic in both context types.
  readonly yoga: YogaServerInstance<any, any>
  /**
   * The context of an operation over a socket. Subscriptions execute with it directly (not
   * through Yoga's per-operation envelope, which would stay allocated for the subscription's
   * whole life); queries and mutations get it through Yoga (initial context `webSocket`).
   */
  readonly webSocketContext: (parts: WebSocketContextParts) => object
  readonly verifyToken: TokenVerifier
  /** Shared channel feeds the subscriptions join. */
  readonly feeds: FeedHub
  readonly limits: WsLimits
  /** Counts connections and subscriptions per user and tenant (cluster-wide with Redis). */
  readonly quotas: Quotas
  /** Whether a page of `origin` may connect to `host` (see `OriginPolicy.allows`). */
  readonly allowsOrigin: (origin: string | undefined, host: string | undefined) => boolean
  /** What a client sees of an execution error in a shared event (unexpected ones masked). */
  readonly maskError: (error: GraphQLError) => GraphQLError
  readonly logger: Logger
  /** Counts sockets, refused tokens and the messages each subscription sends. */
  readonly metrics: Metrics
  /** Lists live connections and subscriptions for the admin API, which may close them. */
  readonly registry?: ConnectionRegistry | undefined
  /** Records refused connections for the admin API. */
  readonly problems?: RecentProblems | undefined
}

interface ConnectionState {
  viewer: Viewer
  expiryTimer: NodeJS.Timeout | undefined
  readonly tracked: TrackedConnection | undefined
  readonly releaseQuota: () => void
  /** Tenant subscription quota claims by subscription id. */
  readonly subscriptionClaims: Map<string, () => void>
  /** What operations may do to the connection (made on first use). */
  handle?: ConnectionHandle
}

type Ctx = WsContext<Record<string, unknown>, SocketExtra>

/**
 * The log context of one socket: its connection id and the name of each running operation.
 * A child logger is made for each line written and not kept: idle connections are most of
 * what an instance holds.
 */
interface ConnectionLog {
  readonly id: string
  readonly operationNames: Map<string, string | null>
}

/** The quota keys a connection of `viewer` counts against. */
function connectionQuotaKeys(viewer: Viewer, limits: WsLimits): QuotaKey[] {
  return [
    { name: `user:${viewer.sub}:connections`, limit: limits.maxConnectionsPerUser },
    ...[...viewer.scopes].map((scope) => ({
      name: `tenant:${scope}:connections`,
      limit: limits.maxConnectionsPerTenant,
    })),
  ].filter((key) => key.limit > 0)
}

/**
 * Serves graphql-transport-ws on `path` of `server`. The protocol is graphql-ws's own
 * (`makeServer`); operations execute through Yoga so both transports share one schema, plugin
 * chain and context; subscriptions to channels are fanned out: subscribers with the same
 * operation, variables and visibility share one execution and one serialized payload per
 * event, written to each socket with only the id spliced in. The token is checked at
 * `connection_init`, can be replaced over the open socket (`refreshToken`), and the socket
 * closes with 4403 when it expires.
 */
export function attachGraphqlWs({
  server,
  path,
  yoga,
  webSocketContext,
  verifyToken,
  feeds,
  limits,
  quotas,
  allowsOrigin,
  maskError,
  logger,
  metrics,
  registry,
  problems,
}: WsTransportOptions): WsTransport {
  const wss = new WebSocketServer({
    server,
    path,
    maxPayload: limits.maxMessageBytes,
    // Only graphql-transport-ws: a client offering nothing else gets no subprotocol and fails.
    handleProtocols: (protocols) => handleProtocols(protocols),
    verifyClient: ({ origin, req }, done) =>
      allowsOrigin(origin, req.headers.host) ? done(true) : done(false, 403, 'Origin not allowed'),
  })
  const executions = createSharedExecutions({
    schema: yoga.getEnveloped().schema,
    maskError,
    onRendered: (event) => metrics.eventRendered('ws', event.publishedAt),
  })
  metrics.observeFanout({ feeds: () => feeds.size(), groups: () => executions.size() })
  const connections = new Map<Ctx, ConnectionState>()
  // Registered before graphql-ws's own listener, so a socket has its logger before any message.
  const logs = new WeakMap<import('ws').WebSocket, ConnectionLog>()
  wss.on('connection', (socket) => {
    const id = newConnectionId()
    logs.set(socket, { id, operationNames: new Map() })
    socket.once('close', metrics.connectionOpened('ws'))
    if (limits.maxConnections > 0 && wss.clients.size > limits.maxConnections) {
      closeSocket(socket, WS_CLOSE.AT_CAPACITY, 'Try again later: server at connection capacity')
    }
  })
  const logOf = (ctx: Ctx, id?: string): Logger => {
    const connection = logs.get(ctx.extra.socket)
    if (!connection) return logger
    const operationName = id === undefined ? undefined : connection.operationNames.get(id)
    if (operationName === undefined) return logger.child({ connectionId: connection.id })
    return logger.child({ connectionId: connection.id, operationId: id, operationName })
  }

  const armExpiry = (ctx: Ctx, state: ConnectionState) => {
    clearTimeout(state.expiryTimer)
    state.expiryTimer = undefined
    const expiresAt = state.viewer.expiresAt
    if (expiresAt === undefined) return
    const delay = expiresAt * 1000 - Date.now()
    state.expiryTimer = setTimeout(
      () => {
        if (delay > MAX_TIMER_DELAY) return armExpiry(ctx, state)
        ctx.extra.socket.close(WS_CLOSE.TOKEN_EXPIRED, 'Forbidden: token expired')
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_DELAY),
    )
  }

  /** Replaces the connection's token with a fresh one for the same `sub`. */
  const connectionHandle = (ctx: Ctx): ConnectionHandle => ({
    async refreshToken(token) {
      const state = connections.get(ctx)
      if (!state) throw forbidden('refresh the token of an open connection')
      const viewer = await verifyToken(token)
      if (viewer.sub !== state.viewer.sub) {
        throw forbidden('replace the token with one for another subject')
      }
      // Running subscriptions were authorized with the old claims; a token that sees less
      // must reconnect, so nothing keeps streaming what it no longer covers.
      const narrower =
        viewer.role !== state.viewer.role ||
        [...state.viewer.scopes].some((scope) => !viewer.scopes.has(scope))
      if (narrower) {
        throw forbidden('refresh with another role or fewer scopes (reconnect with it instead)')
      }
      state.viewer = viewer
      armExpiry(ctx, state)
      state.tracked?.refreshed(viewer)
      logOf(ctx).info({ sub: viewer.sub, expiresAt: viewer.expiresAt ?? null }, 'token refreshed')
      return viewer
    },
  })

  const handleOf = (ctx: Ctx, state: ConnectionState): ConnectionHandle => {
    state.handle ??= connectionHandle(ctx)
    return state.handle
  }

  /**
   * What a `subscribe` runs with: parsed, validated and within the limits, with its context
   * (and fan-out for a subscription); or the errors that refuse it.
   */
  const prepareOperation = async (
    ctx: Ctx,
    id: string,
    payload: SubscribePayload,
  ): Promise<ExecutionArgs | readonly GraphQLError[]> => {
    const state = connections.get(ctx)
    // graphql-ws counts this subscription among `ctx.subscriptions` already.
    if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
      return [limitExceeded(`${limits.maxSubscriptionsPerConnection} operations per connection`)]
    }
    const viewer = state?.viewer ?? null
    const connection = state ? handleOf(ctx, state) : undefined
    // Parsing and validation are cached by query text (Yoga's cache); the envelope itself is
    // only kept by queries and mutations, which end soon.
    const { schema, execute, contextFactory, parse, validate } = yoga.getEnveloped({
      webSocket: { viewer, connection } satisfies WebSocketContextParts,
      params: payload,
    })
    let document: ReturnType<typeof parse>
    try {
      document = parse(payload.query)
    } catch (error) {
      return [asParseFailure(error)]
    }
    const errors = validate(schema, document)
    if (errors.length > 0) return errors
    // Variables that do not fit their types are a request error like a validation error:
    // answer with an `error` message (HTTP answers 400), not a `next` carrying errors.
    const operation = getOperationAST(document, payload.operationName)
    if (operation) {
      const coerced = getVariableValues(
        schema,
        operation.variableDefinitions ?? [],
        payload.variables ?? {},
      )
      if (coerced.errors) return coerced.errors
    }
    const isSubscription = operation?.operation === 'subscription'
    if (isSubscription && viewer && limits.maxSubscriptionsPerTenant > 0) {
      const keys = [...viewer.scopes].map((scope) => ({
        name: `tenant:${scope}:subscriptions`,
        limit: limits.maxSubscriptionsPerTenant,
      }))
      const holder = `${logs.get(ctx.extra.socket)?.id}/${id}`
      const claim = await quotas.claim(keys, holder)
      if (!claim.ok) {
        const tenant = claim.key.name.replace(/^tenant:/, '').replace(/:subscriptions$/, '')
        return [limitExceeded(`subscriptions for ${tenant}`)]
      }
      state?.subscriptionClaims.set(id, claim.release)
    }
    logs
      .get(ctx.extra.socket)
      ?.operationNames.set(id, payload.operationName ?? operation?.name?.value ?? null)
    if (logger.isLevelEnabled('debug')) {
      logOf(ctx, id).debug({ operation: operation?.operation }, 'subscribe')
    }
    const tracked = isSubscription
      ? state?.tracked?.subscribe(id, labelOperation(document, payload.operationName, operation))
      : undefined
    const fanout = isSubscription
      ? createSocketFanout({
          feeds,
          executions,
          sink: ctx.extra.sink,
          id,
          operation: {
            document,
            operationName: payload.operationName,
            variables: payload.variables,
            viewer,
          },
          onFollow: tracked ? (channels) => tracked.follow(channels) : undefined,
          onFrames: (count) => {
            metrics.framesSent('ws', count)
            tracked?.delivered(count)
          },
        })
      : undefined
    const base = {
      schema,
      document,
      operationName: payload.operationName ?? null,
      variableValues: payload.variables ?? null,
    }
    if (isSubscription) {
      // The subscription's resolvers see `trackedSubscription`, so the channels they follow
      // are listed; `fanout` delivers the channels they follow.
      return {
        ...base,
        contextValue: webSocketContext({
          viewer,
          trackedSubscription: tracked,
          fanout,
          connection,
        }),
      }
    }
    return {
      ...base,
      contextValue: await contextFactory(),
      rootValue: { execute } satisfies EnvelopedRoot,
    }
  }

  /**
   * Runs a subscription with GraphQL's own `subscribe`. A fanned-out one hands graphql-ws the
   * stream it parked (its events are written by the fan-out); one that streams through the
   * executor (stats snapshots) has each result masked. Errors are recorded for the admin API
   * before masking, and the subscriptions gauge counts the live ones.
   */
  const runSubscription = async (args: ExecutionArgs) => {
    const result = await graphqlSubscribe(args)
    if (!isAsyncIterable(result)) {
      if (problems) recordOperationErrors(problems, result.errors, args)
      return masked(result)
    }
    const field = labelOperation(args.document, args.operationName).rootField
    metrics.subscriptions.inc({ field })
    const ended = () => metrics.subscriptions.dec({ field })
    const parked = (args.contextValue as { fanout?: SocketFanout }).fanout?.stream
    if (parked) {
      parked.onEnded(ended)
      return parked
    }
    return onEnd(result, ended, (next: ExecutionResult) => {
      if (problems) recordOperationErrors(problems, next.errors, args)
      return masked(next)
    })
  }
  const masked = (result: ExecutionResult): ExecutionResult =>
    result.errors ? { ...result, errors: result.errors.map((error) => maskError(error)) } : result

  const protocol = makeServer<Record<string, unknown>, SocketExtra>({
    connectionInitWaitTimeout: limits.initTimeoutMs,
    execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
    subscribe: runSubscription,
    onConnect: async (ctx) => {
      const { socket } = ctx.extra
      const request = ctx.extra.takeRequest()
      // Only what is needed of the request is kept (a closure below would keep all of it).
      const remoteAddress = request?.socket.remoteAddress ?? null
      const refuse = (code: number, reason: string, problem = 'UNAUTHENTICATED') => {
        if (problem === 'UNAUTHENTICATED') metrics.authRefusals.inc({ code: problem })
        logOf(ctx).info({ code, reason }, 'connection refused')
        problems?.record({ code: problem, message: reason, remoteAddress })
        closeSocket(socket, code, reason)
        return false
      }
      const token = extractToken({
        connectionParams: ctx.connectionParams,
        authorizationHeader: request?.headers.authorization,
        url: request?.url,
      })
      if (!token) return refuse(WS_CLOSE.UNAUTHORIZED, 'Unauthorized: a token is required')
      let viewer: Viewer
      try {
        viewer = await verifyToken(token)
      } catch (error) {
        const reason = error instanceof Error ? error.message : 'token invalid'
        const expired = reason === 'token expired'
        return refuse(
          expired ? WS_CLOSE.TOKEN_EXPIRED : WS_CLOSE.UNAUTHORIZED,
          `Unauthorized: ${reason}`,
        )
      }
      const connectionId = logs.get(socket)?.id ?? newConnectionId()
      const claim = await quotas.claim(connectionQuotaKeys(viewer, limits), connectionId)
      if (!claim.ok) {
        return refuse(
          WS_CLOSE.QUOTA_EXCEEDED,
          `Too many connections for ${claim.key.name.replace(/:connections$/, '')}`.slice(0, 120),
          'LIMIT_EXCEEDED',
        )
      }
      if (socket.readyState !== socket.OPEN) {
        claim.release()
        return false
      }
      const tracked = registry?.open({
        viewer,
        remoteAddress,
        forwardedFor: request ? forwardedFor(request) : null,
        close: (code, reason) => closeSocket(socket, code, reason),
      })
      const state: ConnectionState = {
        viewer,
        expiryTimer: undefined,
        tracked,
        releaseQuota: claim.release,
        subscriptionClaims: new Map(),
      }
      connections.set(ctx, state)
      armExpiry(ctx, state)
      logOf(ctx).info({ sub: viewer.sub, role: viewer.role }, 'connection accepted')
      return true
    },
    // Errors thrown while streaming bypass Yoga's masking; mask the unexpected ones here.
    onError: (ctx, id, _payload, errors) =>
      errors.map((error) => maskStreamError(error, id, logOf(ctx, id))),
    onNext: (ctx, id, _payload, args) => {
      if (ctx.subscriptions[id]) metrics.frameSent('ws', args.contextValue as object)
    },
    onComplete: (ctx, id) => {
      ctx.extra.operations.ended(id)
      if (logger.isLevelEnabled('debug')) logOf(ctx, id).debug('complete')
      logs.get(ctx.extra.socket)?.operationNames.delete(id)
      const state = connections.get(ctx)
      state?.subscriptionClaims.get(id)?.()
      state?.subscriptionClaims.delete(id)
    },
    // Lets an operator end a subscription's stream (admin API).
    onOperation: (ctx, id, _payload, _args, result) => {
      ctx.extra.operations.setUp(id)
      return connections.get(ctx)?.tracked?.started(id, result)
    },
    onClose: (ctx, code, reason) => {
      logOf(ctx).info({ code, reason }, 'connection closed')
      const state = connections.get(ctx)
      if (!state) return
      clearTimeout(state.expiryTimer)
      state.tracked?.closed()
      state.releaseQuota()
      for (const release of state.subscriptionClaims.values()) release()
      connections.delete(ctx)
    },
    onSubscribe: async (ctx, id, payload) => {
      const refused = await prepareOperation(ctx, id, payload)
      // Refused before it ran: graphql-ws calls no other hook for this id.
      if (Array.isArray(refused)) {
        ctx.extra.operations.setUp(id)
        ctx.extra.operations.ended(id)
      }
      return refused
    },
  })
  const sockets = serveSockets({
    wss,
    server: protocol,
    limits,
    logger,
    onSlowConsumer: () => metrics.slowConsumersDropped.inc({ transport: 'ws' }),
  })
  wss.on('error', (error) => logger.error({ err: error }, 'websocket server error'))

  return {
    connectionCount: () => wss.clients.size,
    async close(code = WS_CLOSE.GOING_AWAY, reason = 'Server shutting down') {
      sockets.close()
      for (const client of wss.clients) client.close(code, reason)
      // A peer that never answers the close frame would hold shutdown for ws's 30 s close
      // timeout; after a short grace its socket is cut.
      const stragglers = setTimeout(() => {
        for (const client of wss.clients) client.terminate()
      }, CLOSE_GRACE)
      try {
        await new Promise<void>((resolve) => wss.close(() => resolve()))
      } finally {
        clearTimeout(stragglers)
      }
    },
  }
}

/** The `X-Forwarded-For` chain of an upgrade request, or null. */
function forwardedFor(request: IncomingMessage): string | null {
  return [request.headers['x-forwarded-for'] ?? []].flat().join(', ') || null
}

/** A syntax error as a client-facing error with the same code HTTP answers with. */
function asParseFailure(error: unknown): GraphQLError {
  if (!(error instanceof GraphQLError)) throw error
  return new GraphQLError(error.message, {
    ...(error.source ? { source: error.source } : {}),
    ...(error.positions ? { positions: error.positions } : {}),
    // A parse refusal that already has a code (the token limit) keeps it.
    extensions: { ...error.extensions, code: error.extensions['code'] ?? 'GRAPHQL_PARSE_FAILED' },
  })
}

/**
 * What a client sees of an error that ended its stream: errors made for clients (a
 * `GraphQLError` at the root, e.g. CURSOR_EXPIRED or a variable coercion message) and
 * validation errors as they are; anything else as a generic message, logged here with detail.
 */
export function maskStreamError(
  error: GraphQLError,
  id: string,
  logger: Logger,
): GraphQLFormattedError {
  // The innermost cause decides: a GraphQLError is meant for clients (a coded error, a
  // variable coercion message); anything else is a bug or an outage to hide.
  let cause: Error | undefined = error.originalError
  while (cause instanceof GraphQLError && cause.originalError) cause = cause.originalError
  if (!cause || cause instanceof GraphQLError) return error.toJSON()
  logger.error({ err: cause, subscriptionId: id }, 'unexpected error in a subscription stream')
  return { message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }
}

type OperationResult = ReturnType<NonNullable<Parameters<typeof makeServer>[0]['execute']>>

/** Yoga's enveloped `execute` of a query or mutation, carried to graphql-ws in `rootValue`. */
interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => OperationResult
}
