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
import type { Logger } from '../ops/logger.js'

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
}

interface ConnectionState {
  viewer: Viewer
  expiryTimer: NodeJS.Timeout | undefined
}

type Extra = { socket: import('ws').WebSocket; request: import('node:http').IncomingMessage }

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
}: WsTransportOptions): WsTransport {
  const wss = new WebSocketServer({ server, path })
  const connections = new Map<WsContext<Record<string, unknown>, Extra>, ConnectionState>()

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
        const token = extractToken({
          connectionParams: ctx.connectionParams,
          authorizationHeader: request.headers.authorization,
          url: request.url,
        })
        if (!token) {
          socket.close(WS_CLOSE.UNAUTHORIZED, 'Unauthorized: a token is required')
          return false
        }
        try {
          const viewer = await verifyToken(token)
          const state: ConnectionState = { viewer, expiryTimer: undefined }
          connections.set(ctx, state)
          armExpiry(ctx, state)
          return true
        } catch (error) {
          const reason = error instanceof Error ? error.message : 'token invalid'
          const expired = reason === 'token expired'
          socket.close(
            expired ? WS_CLOSE.TOKEN_EXPIRED : WS_CLOSE.UNAUTHORIZED,
            `Unauthorized: ${reason}`,
          )
          return false
        }
      },
      // Errors thrown while streaming bypass Yoga's masking; mask the unexpected ones here.
      onError: (_ctx, id, _payload, errors) =>
        errors.map((error) => maskStreamError(error, id, logger)),
      onClose: (ctx) => {
        const state = connections.get(ctx)
        if (state) clearTimeout(state.expiryTimer)
        connections.delete(ctx)
      },
      onSubscribe: async (ctx, _id, payload) => {
        const state = connections.get(ctx)
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          connectionViewer: state?.viewer ?? null,
          request: ctx.extra.request,
          params: payload,
        })
        let document: ReturnType<typeof parse>
        try {
          document = parse(payload.query)
        } catch (error) {
          return [error as import('graphql').GraphQLError]
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
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName ?? null,
          variableValues: payload.variables ?? null,
          contextValue: await contextFactory(),
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

/**
 * What a client sees of an error that ended its stream: expected errors (a `GraphQLError` with
 * `extensions.code`, e.g. CURSOR_EXPIRED) and validation errors as they are; anything else as
 * a generic message, logged here with its detail.
 */
export function maskStreamError(
  error: GraphQLError,
  id: string,
  logger: Logger,
): GraphQLFormattedError {
  const cause = error.originalError
  if (!cause || (cause instanceof GraphQLError && cause.extensions['code'])) return error.toJSON()
  logger.error({ err: cause, subscriptionId: id }, 'unexpected error in a subscription stream')
  return { message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }
}

type OperationResult = ReturnType<NonNullable<Parameters<typeof useServer>[0]['execute']>>

/** Yoga's enveloped `execute`/`subscribe`, carried to graphql-ws through `rootValue`. */
interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => OperationResult
  subscribe: (args: ExecutionArgs) => OperationResult
}
