import type { IncomingMessage, Server } from 'node:http'
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  getOperationAST,
  getVariableValues,
  subscribe as graphqlSubscribe,
  type OperationDefinitionNode,
} from 'graphql'
import { CloseCode, handleProtocols, type SubscribePayload } from 'graphql-ws'
import { isAsyncIterable, type YogaServerInstance } from 'graphql-yoga'
import { type WebSocket, WebSocketServer } from 'ws'
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
import {
  isRefusal,
  type ProtocolHandlers,
  ProtocolSession,
  type Running,
} from './graphql-ws-protocol.js'
import type { QuotaKey, Quotas } from './quotas.js'
import { createSharedExecutions } from './shared-executions.js'
import { createSocketFanout, type SocketFanout } from './socket-fanout.js'
import { closeSocket, type SocketLimits, serveSockets, type WebSocketSink } from './ws-sockets.js'

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

/**
 * What Switchboard keeps per socket. A class rather than closures: one lives per connection,
 * and one object with its methods on the prototype is a fraction of their size.
 */
class WsConnection implements ConnectionHandle {
  /** Set once `connection_init` was accepted. */
  viewer: Viewer | null = null
  /** The socket closed. */
  closed = false
  expiryTimer: NodeJS.Timeout | undefined
  tracked: TrackedConnection | undefined
  releaseQuota: (() => void) | undefined
  #request: IncomingMessage | undefined

  constructor(
    /** The connection id in logs and quotas. */
    readonly id: string,
    readonly sink: WebSocketSink,
    request: IncomingMessage,
    /** Counts the connection closed (metrics). */
    readonly onClosed: () => void,
    private readonly tokens: TokenRefresher,
  ) {
    this.#request = request
  }

  /** Operations see the connection as this handle (`ConnectionHandle`). */
  refreshToken(token: string): Promise<Viewer> {
    return this.tokens.refresh(this, token)
  }

  get socket(): WebSocket {
    return this.sink.socket
  }

  /**
   * The upgrade request, handed over once (to `connection_init`'s check) and then forgotten:
   * its headers and stream state would weigh about a KiB per connection for its whole life.
   */
  takeRequest(): IncomingMessage | undefined {
    const request = this.#request
    this.#request = undefined
    return request
  }
}

/** Replaces the token of a connection (see `ConnectionHandle.refreshToken`). */
interface TokenRefresher {
  refresh(connection: WsConnection, token: string): Promise<Viewer>
}

/** What Switchboard keeps per running operation. */
interface OperationData {
  /** The operation's name in logs. */
  readonly name: string | null
  /** Gives back the tenant subscription quota it holds. */
  readonly release: (() => void) | undefined
  /** The context of a stream whose results the protocol sends (delivery metrics). */
  readonly context: object | undefined
}

type Session = ProtocolSession<WsConnection, OperationData>

/** An operation ready to run, and what is kept with it while it runs. */
interface PreparedOperation extends Omit<OperationData, 'context'> {
  readonly args: ExecutionArgs
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
 * Serves graphql-transport-ws on `path` of `server`. `ProtocolSession` speaks the protocol
 * (graphql-ws's message validation and close codes); operations execute through Yoga so both
 * transports share one schema, plugin chain and context; subscriptions to channels are fanned
 * out: subscribers with the same operation, variables and visibility share one execution and
 * one serialized payload per event, written to each socket with only the id spliced in. The token is checked at
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
  const logOf = (connection: WsConnection, id?: string, session?: Session): Logger => {
    const operationName = id === undefined ? undefined : session?.dataOf(id)?.name
    if (operationName === undefined) return logger.child({ connectionId: connection.id })
    return logger.child({ connectionId: connection.id, operationId: id, operationName })
  }

  const armExpiry = (connection: WsConnection) => {
    clearTimeout(connection.expiryTimer)
    connection.expiryTimer = undefined
    const expiresAt = connection.viewer?.expiresAt
    if (expiresAt === undefined) return
    const delay = expiresAt * 1000 - Date.now()
    connection.expiryTimer = setTimeout(
      () => {
        if (delay > MAX_TIMER_DELAY) return armExpiry(connection)
        connection.socket.close(WS_CLOSE.TOKEN_EXPIRED, 'Forbidden: token expired')
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_DELAY),
    )
  }

  /** Replaces the connection's token with a fresh one for the same `sub`. */
  const tokens: TokenRefresher = {
    async refresh(connection, token) {
      const current = connection.viewer
      if (!current || connection.closed) {
        throw forbidden('refresh the token of an open connection')
      }
      const viewer = await verifyToken(token)
      if (viewer.sub !== current.sub) {
        throw forbidden('replace the token with one for another subject')
      }
      // Running subscriptions were authorized with the old claims; a token that sees less
      // must reconnect, so nothing keeps streaming what it no longer covers.
      const narrower =
        viewer.role !== current.role ||
        [...current.scopes].some((scope) => !viewer.scopes.has(scope))
      if (narrower) {
        throw forbidden('refresh with another role or fewer scopes (reconnect with it instead)')
      }
      connection.viewer = viewer
      armExpiry(connection)
      connection.tracked?.refreshed(viewer)
      logOf(connection).info(
        { sub: viewer.sub, expiresAt: viewer.expiresAt ?? null },
        'token refreshed',
      )
      return viewer
    },
  }

  /**
   * What a `subscribe` runs with: parsed, validated and within the limits, with its context
   * (and fan-out for a subscription) and the tenant quota it claimed; or the errors that
   * refuse it.
   */
  const prepareOperation = async (
    session: Session,
    id: string,
    payload: SubscribePayload,
  ): Promise<PreparedOperation | readonly GraphQLError[]> => {
    const { connection } = session
    // The session counts this operation among its own already.
    if (session.operationCount() > limits.maxSubscriptionsPerConnection) {
      return [limitExceeded(`${limits.maxSubscriptionsPerConnection} operations per connection`)]
    }
    const viewer = connection.viewer
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
    const operation = getOperationAST(document, payload.operationName)
    if (!operation) return [new GraphQLError('Unable to identify operation')]
    // Variables that do not fit their types are a request error like a validation error:
    // answer with an `error` message (HTTP answers 400), not a `next` carrying errors.
    const coerced = getVariableValues(
      schema,
      operation.variableDefinitions ?? [],
      payload.variables ?? {},
    )
    if (coerced.errors) return coerced.errors
    const isSubscription = operation.operation === 'subscription'
    let release: (() => void) | undefined
    if (isSubscription && viewer && limits.maxSubscriptionsPerTenant > 0) {
      const keys = [...viewer.scopes].map((scope) => ({
        name: `tenant:${scope}:subscriptions`,
        limit: limits.maxSubscriptionsPerTenant,
      }))
      const claim = await quotas.claim(keys, `${connection.id}/${id}`)
      if (!claim.ok) {
        const tenant = claim.key.name.replace(/^tenant:/, '').replace(/:subscriptions$/, '')
        return [limitExceeded(`subscriptions for ${tenant}`)]
      }
      release = claim.release
    }
    const name = payload.operationName ?? operation.name?.value ?? null
    if (logger.isLevelEnabled('debug')) {
      logOf(connection).debug(
        { operationId: id, operationName: name, operation: operation.operation },
        'subscribe',
      )
    }
    const base = {
      schema,
      document,
      operationName: payload.operationName ?? null,
      variableValues: payload.variables ?? null,
    }
    if (!isSubscription) {
      const contextValue = await contextFactory()
      return {
        args: { ...base, contextValue, rootValue: { execute } satisfies EnvelopedRoot },
        name,
        release,
      }
    }
    try {
      const contextValue = subscriptionContext(connection, id, payload, document, operation)
      return { args: { ...base, contextValue }, name, release }
    } catch (error) {
      release?.()
      throw error
    }
  }

  /**
   * The context of subscription `id`: the connection's viewer, the admin registry's record of
   * it (its resolvers list the channels they follow through it) and the fan-out that delivers
   * those channels.
   */
  const subscriptionContext = (
    connection: WsConnection,
    id: string,
    payload: SubscribePayload,
    document: DocumentNode,
    operation: OperationDefinitionNode,
  ): object => {
    const { viewer } = connection
    const tracked = connection.tracked?.subscribe(
      id,
      labelOperation(document, payload.operationName, operation),
    )
    const fanout = createSocketFanout({
      feeds,
      executions,
      sink: connection.sink,
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
    return webSocketContext({ viewer, trackedSubscription: tracked, fanout, connection })
  }

  /**
   * Runs an operation: a query or mutation through Yoga's enveloped `execute`, a subscription
   * with GraphQL's own `subscribe`. A fanned-out subscription is detached (the fan-out writes
   * its events); one that streams through the executor (stats snapshots) has each result
   * masked. Errors are recorded for the admin API before masking, and the subscriptions gauge
   * counts the live ones.
   */
  const run = async (args: ExecutionArgs): Promise<Running> => {
    const root = args.rootValue as EnvelopedRoot | undefined
    if (root) {
      const result = await root.execute(args)
      return isAsyncIterable(result)
        ? { kind: 'stream', stream: result }
        : { kind: 'result', result }
    }
    const result = await graphqlSubscribe(args)
    if (!isAsyncIterable(result)) {
      if (problems) recordOperationErrors(problems, result.errors, args)
      return { kind: 'result', result: masked(result) }
    }
    const ended = countSubscription(labelOperation(args.document, args.operationName).rootField)
    const parked = (args.contextValue as { fanout?: SocketFanout }).fanout?.stream
    if (parked) {
      parked.onEnded(ended)
      return { kind: 'detached', stream: parked }
    }
    const stream = onEnd(result, ended, (next: ExecutionResult) => {
      if (problems) recordOperationErrors(problems, next.errors, args)
      return masked(next)
    })
    return { kind: 'stream', stream }
  }
  /**
   * Counts a live subscription of `field`; the returned function counts it ended. Made apart
   * from `run`, so that what it keeps for the subscription's life is the field name only, not
   * `run`'s execution arguments.
   */
  const countSubscription = (field: string) => {
    metrics.subscriptions.inc({ field })
    return () => metrics.subscriptions.dec({ field })
  }
  const masked = (result: ExecutionResult): ExecutionResult =>
    result.errors ? { ...result, errors: result.errors.map((error) => maskError(error)) } : result

  /** Hands what runs to the admin registry, which can then end a stream with an error. */
  const registered = (connection: WsConnection, id: string, running: Running): Running => {
    const tracked = connection.tracked
    if (!tracked) return running
    if (running.kind === 'result') {
      tracked.started(id, running.result)
      return running
    }
    if (running.kind === 'detached') {
      tracked.started(id, running.stream)
      return running
    }
    return { kind: 'stream', stream: tracked.started(id, running.stream) ?? running.stream }
  }

  const refuse = (
    connection: WsConnection,
    remoteAddress: string | null,
    code: number,
    reason: string,
    problem = 'UNAUTHENTICATED',
  ) => {
    if (problem === 'UNAUTHENTICATED') metrics.authRefusals.inc({ code: problem })
    logOf(connection).info({ code, reason }, 'connection refused')
    problems?.record({ code: problem, message: reason, remoteAddress })
    closeSocket(connection.socket, code, reason)
    return false
  }

  const handlers: ProtocolHandlers<WsConnection, OperationData> = {
    async connect({ connection }, params) {
      const { socket } = connection
      const request = connection.takeRequest()
      // Only what is needed of the request is kept (a closure below would keep all of it).
      const remoteAddress = request?.socket.remoteAddress ?? null
      const token = extractToken({
        connectionParams: params,
        authorizationHeader: request?.headers.authorization,
        url: request?.url,
      })
      if (!token) {
        return refuse(
          connection,
          remoteAddress,
          WS_CLOSE.UNAUTHORIZED,
          'Unauthorized: a token is required',
        )
      }
      let viewer: Viewer
      try {
        viewer = await verifyToken(token)
      } catch (error) {
        const reason = error instanceof Error ? error.message : 'token invalid'
        const expired = reason === 'token expired'
        return refuse(
          connection,
          remoteAddress,
          expired ? WS_CLOSE.TOKEN_EXPIRED : WS_CLOSE.UNAUTHORIZED,
          `Unauthorized: ${reason}`,
        )
      }
      const claim = await quotas.claim(connectionQuotaKeys(viewer, limits), connection.id)
      if (!claim.ok) {
        return refuse(
          connection,
          remoteAddress,
          WS_CLOSE.QUOTA_EXCEEDED,
          `Too many connections for ${claim.key.name.replace(/:connections$/, '')}`.slice(0, 120),
          'LIMIT_EXCEEDED',
        )
      }
      if (socket.readyState !== socket.OPEN) {
        claim.release()
        return false
      }
      connection.tracked = registry?.open({
        viewer,
        remoteAddress,
        forwardedFor: request ? forwardedFor(request) : null,
        close: (code, reason) => closeSocket(socket, code, reason),
      })
      connection.viewer = viewer
      connection.releaseQuota = claim.release
      armExpiry(connection)
      logOf(connection).info({ sub: viewer.sub, role: viewer.role }, 'connection accepted')
      return true
    },
    async start(session, id, payload) {
      const prepared = await prepareOperation(session, id, payload)
      if (isRefusal(prepared)) return prepared
      const { args, name, release } = prepared
      let running: Running
      try {
        running = registered(session.connection, id, await run(args))
      } catch (error) {
        release?.()
        throw error
      }
      // Only a stream's messages count as delivered (a detached one counts its own frames).
      const context = running.kind === 'stream' ? (args.contextValue as object) : undefined
      return { running, data: { name, release, context } }
    },
    // Errors ending a stream bypass Yoga's masking; mask the unexpected ones here.
    formatErrors: (session, id, errors) =>
      errors.map((error) => maskStreamError(error, id, logOf(session.connection, id, session))),
    sentNext(session, id) {
      const context = session.dataOf(id)?.context
      if (context) metrics.frameSent('ws', context)
    },
    ended(session, id, data) {
      if (logger.isLevelEnabled('debug')) {
        logOf(session.connection).debug(
          { operationId: id, operationName: data?.name ?? null },
          'complete',
        )
      }
      data?.release?.()
    },
    closed({ connection }, code, reason) {
      connection.closed = true
      logOf(connection).info({ code, reason }, 'connection closed')
      connection.onClosed()
      clearTimeout(connection.expiryTimer)
      connection.tracked?.closed()
      connection.releaseQuota?.()
    },
    failed(session, error) {
      logOf(session.connection).error({ err: error }, 'websocket message handling failed')
    },
  }

  const sockets = serveSockets({
    wss,
    open(socket, request, sink) {
      const connection = new WsConnection(
        newConnectionId(),
        sink,
        request,
        metrics.connectionOpened('ws'),
        tokens,
      )
      const session = new ProtocolSession(sink, handlers, connection, limits.initTimeoutMs)
      if (limits.maxConnections > 0 && wss.clients.size > limits.maxConnections) {
        closeSocket(socket, WS_CLOSE.AT_CAPACITY, 'Try again later: server at connection capacity')
      }
      return session
    },
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

/** Yoga's enveloped `execute` of a query or mutation, carried to `run` in `rootValue`. */
interface EnvelopedRoot {
  execute: (
    args: ExecutionArgs,
  ) => Promise<ExecutionResult | AsyncIterable<ExecutionResult>> | ExecutionResult
}
