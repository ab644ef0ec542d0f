import type { Server } from 'node:http'
import {
  type ExecutionArgs,
  GraphQLError,
  type GraphQLFormattedError,
  getOperationAST,
  getVariableValues,
} from 'graphql'
import { CloseCode, type Context as WsContext } from 'graphql-ws'
import { useServer } from 'graphql-ws/use/ws'
import type { YogaServerInstance } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import { extractToken } from '../auth/extract-token.js'
import type { TokenVerifier } from '../auth/verify-token.js'
import type { Viewer } from '../auth/viewer.js'
import { type Logger, newConnectionId } from '../ops/logger.js'
import type { Metrics } from '../ops/metrics.js'
import { labelOperation } from '../ops/operation-label.js'
import type { RecentProblems } from '../ops/recent-problems.js'
import type { ConnectionRegistry, TrackedConnection } from './connection-registry.js'

/** Close codes Switchboard uses beside graphql-ws's own. */
export const WS_CLOSE = {
  /** Token expired (at connect or while connected): the graphql-ws client retries this one. */
  TOKEN_EXPIRED: CloseCode.Forbidden,
  /** No token or an invalid one: retrying with the same token cannot help, so it is fatal. */
  UNAUTHORIZED: CloseCode.Unauthorized,
  /** Server going away (shutdown): clients reconnect elsewhere. */
  GOING_AWAY: 1001,
} as const

const CLOSE_GRACE = 2_000 // ms a closing peer gets to answer before its socket is cut

// setTimeout cannot wait longer than 2^31-1 ms; longer lifetimes re-arm.
const MAX_TIMER_DELAY = 2_147_483_647 // ms

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
  readonly verifyToken: TokenVerifier
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
  tracked: TrackedConnection | undefined
}

type Extra = { socket: import('ws').WebSocket; request: import('node:http').IncomingMessage }

/** The loggers of one socket: its own (with its connection id), and one per running operation. */
interface ConnectionLog {
  readonly log: Logger
  readonly operations: Map<string, Logger>
}

/**
 * Serves graphql-transport-ws on `path` of `server`, executing through Yoga so both transports
 * share one schema, plugin chain and context. The token is checked at `connection_init`; the
 * socket closes with 4403 when it expires.
 */
export function attachGraphqlWs({
  server,
  path,
  yoga,
  verifyToken,
  logger,
  metrics,
  registry,
  problems,
}: WsTransportOptions): WsTransport {
  const wss = new WebSocketServer({ server, path })
  const connections = new Map<WsContext<Record<string, unknown>, Extra>, ConnectionState>()
  // Registered before graphql-ws's own listener, so a socket has its logger before any message.
  const logs = new WeakMap<import('ws').WebSocket, ConnectionLog>()
  wss.on('connection', (socket) => {
    logs.set(socket, {
      log: logger.child({ connectionId: newConnectionId() }),
      operations: new Map(),
    })
    socket.once('close', metrics.connectionOpened('ws'))
  })
  const logOf = (ctx: WsContext<Record<string, unknown>, Extra>, id?: string) => {
    const connection = logs.get(ctx.extra.socket)
    return (
      (id === undefined ? undefined : connection?.operations.get(id)) ?? connection?.log ?? logger
    )
  }

  const armExpiry = (ctx: WsContext<Record<string, unknown>, Extra>, state: ConnectionState) => {
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

  const disposable = useServer<Record<string, unknown>, Extra>(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      onConnect: async (ctx) => {
        const { request, socket } = ctx.extra
        const refuse = (code: number, reason: string) => {
          metrics.authRefusals.inc({ code: 'UNAUTHENTICATED' })
          logOf(ctx).info({ code, reason }, 'connection refused')
          const remoteAddress = request.socket.remoteAddress ?? null
          problems?.record({ code: 'UNAUTHENTICATED', message: reason, remoteAddress })
          socket.close(code, reason)
          return false
        }
        const token = extractToken({
          connectionParams: ctx.connectionParams,
          authorizationHeader: request.headers.authorization,
          url: request.url,
        })
        if (!token) return refuse(WS_CLOSE.UNAUTHORIZED, 'Unauthorized: a token is required')
        try {
          const viewer = await verifyToken(token)
          const tracked = registry?.open({
            viewer,
            remoteAddress: request.socket.remoteAddress ?? null,
            forwardedFor: [request.headers['x-forwarded-for'] ?? []].flat().join(', ') || null,
            close: (code, reason) => {
              socket.close(code, reason)
              setTimeout(() => socket.terminate(), CLOSE_GRACE).unref()
            },
          })
          const state: ConnectionState = { viewer, expiryTimer: undefined, tracked }
          connections.set(ctx, state)
          armExpiry(ctx, state)
          logOf(ctx).info({ sub: viewer.sub, role: viewer.role }, 'connection accepted')
          return true
        } catch (error) {
          const reason = error instanceof Error ? error.message : 'token invalid'
          const expired = reason === 'token expired'
          return refuse(
            expired ? WS_CLOSE.TOKEN_EXPIRED : WS_CLOSE.UNAUTHORIZED,
            `Unauthorized: ${reason}`,
          )
        }
      },
      // Errors thrown while streaming bypass Yoga's masking; mask the unexpected ones here.
      onError: (ctx, id, _payload, errors) =>
        errors.map((error) => maskStreamError(error, id, logOf(ctx, id))),
      onNext: (ctx, id, _payload, args) => {
        if (ctx.subscriptions[id]) metrics.frameSent('ws', args.contextValue as object)
      },
      onComplete: (ctx, id) => {
        logOf(ctx, id).debug('complete')
        logs.get(ctx.extra.socket)?.operations.delete(id)
      },
      // Lets an operator end a subscription's stream (admin API).
      onOperation: (ctx, id, _payload, _args, result) =>
        connections.get(ctx)?.tracked?.started(id, result),
      onClose: (ctx, code, reason) => {
        logOf(ctx).info({ code, reason }, 'connection closed')
        const state = connections.get(ctx)
        if (state) clearTimeout(state.expiryTimer)
        state?.tracked?.closed()
        connections.delete(ctx)
      },
      onSubscribe: async (ctx, id, payload) => {
        const state = connections.get(ctx)
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          connectionViewer: state?.viewer ?? null,
          // `req`, not `request`: Yoga would take the upgrade GET for the operation's request
          // and refuse every mutation ("only from a POST request").
          req: ctx.extra.request,
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
        const log = logOf(ctx).child({
          operationId: id,
          operationName: payload.operationName ?? operation?.name?.value ?? null,
        })
        logs.get(ctx.extra.socket)?.operations.set(id, log)
        log.debug({ operation: operation?.operation }, 'subscribe')
        const tracked =
          operation?.operation === 'subscription'
            ? state?.tracked?.subscribe(
                id,
                labelOperation(document, payload.operationName, operation),
              )
            : undefined
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName ?? null,
          variableValues: payload.variables ?? null,
          // The subscription's resolvers see it (`trackedSubscription`), so the channels they
          // follow are listed.
          contextValue: await contextFactory(tracked && { trackedSubscription: tracked }),
          rootValue: { execute, subscribe } as EnvelopedRoot,
        }
        return args
      },
    },
    wss,
  )
  wss.on('error', (error) => logger.error({ err: error }, 'websocket server error'))

  return {
    connectionCount: () => wss.clients.size,
    async close(code = WS_CLOSE.GOING_AWAY, reason = 'Server shutting down') {
      for (const client of wss.clients) client.close(code, reason)
      // A peer that never answers the close frame would hold shutdown for ws's 30 s close
      // timeout; after a short grace its socket is cut.
      const stragglers = setTimeout(() => {
        for (const client of wss.clients) client.terminate()
      }, CLOSE_GRACE)
      try {
        await disposable.dispose()
        await new Promise<void>((resolve) => wss.close(() => resolve()))
      } finally {
        clearTimeout(stragglers)
      }
    },
  }
}

/** A syntax error as a client-facing error with the same code HTTP answers with. */
function asParseFailure(error: unknown): GraphQLError {
  if (!(error instanceof GraphQLError)) throw error
  return new GraphQLError(error.message, {
    ...(error.source ? { source: error.source } : {}),
    ...(error.positions ? { positions: error.positions } : {}),
    extensions: { ...error.extensions, code: 'GRAPHQL_PARSE_FAILED' },
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

type OperationResult = ReturnType<NonNullable<Parameters<typeof useServer>[0]['execute']>>

/** Yoga's enveloped `execute`/`subscribe`, carried to graphql-ws through `rootValue`. */
interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => OperationResult
  subscribe: (args: ExecutionArgs) => OperationResult
}
