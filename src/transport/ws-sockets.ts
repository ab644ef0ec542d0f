import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { CloseCode, type makeServer } from 'graphql-ws'
import type { WebSocket, WebSocketServer } from 'ws'
import type { Limits } from '../config.js'
import type { Logger } from '../ops/logger.js'
import { createTokenBucket } from '../ops/token-bucket.js'
import { createOperationOrder, type MessageHead, type OperationOrder } from './operation-order.js'

/** Close codes of the socket layer, beside graphql-ws's own. */
export const SOCKET_CLOSE = {
  /** The client sent messages faster than its rate; it may reconnect (and slow down). */
  RATE_LIMITED: 4029,
  /** The client did not read its messages: its send buffer passed the cap. It resumes. */
  SLOW_CONSUMER: 4008,
} as const

const CLOSE_GRACE = 2_000 // ms a closing peer gets to answer before its socket is cut

// Message types only a server sends; from a client they are a protocol violation (4400).
const SERVER_MESSAGE_TYPES = new Set(['connection_ack', 'next', 'error'])

/** The type and id of a message, when it is JSON with a string type; graphql-ws validates the rest. */
function headOf(data: string): MessageHead | undefined {
  try {
    const message = JSON.parse(data) as { type?: unknown; id?: unknown } | null
    if (typeof message?.type !== 'string') return undefined
    return { type: message.type, id: typeof message.id === 'string' ? message.id : undefined }
  } catch {
    return undefined
  }
}

/** Limits of one socket (documented with their variables on `Limits`). */
export type SocketLimits = Pick<
  Limits,
  'messagesPerSecond' | 'messageBurst' | 'maxBufferedBytes' | 'keepAliveMs'
>

/** What the protocol layer and the fan-out see of one socket. */
export interface SocketSink {
  /** Sends a text frame unless the socket is gone; a socket over its buffer cap is closed. */
  send(frame: string): void
  /** Runs `write` with the socket corked, so the frames it sends leave in one write. */
  batch(write: () => void): void
  /** Resolves when the socket's buffer is below half its cap (or it closed). */
  drained(): Promise<void> | undefined
  /** Whether frames can still be sent. */
  isOpen(): boolean
}

/** The `extra` graphql-ws hands to hooks for each connection. */
export interface SocketExtra {
  readonly socket: WebSocket
  /**
   * The upgrade request, handed over once (to `connection_init`'s check) and then forgotten:
   * its headers and stream state would weigh about a KiB per connection for its whole life.
   */
  takeRequest(): IncomingMessage | undefined
  readonly sink: SocketSink
  /** Tell it when an operation is set up and when it ended (see `OperationOrder`). */
  readonly operations: Pick<OperationOrder, 'setUp' | 'ended'>
}

export interface ServeSocketsOptions {
  readonly wss: WebSocketServer
  readonly server: ReturnType<typeof makeServer<Record<string, unknown>, SocketExtra>>
  readonly limits: SocketLimits
  readonly logger: Logger
  /** Called when a socket is closed for not reading (metrics). */
  readonly onSlowConsumer: () => void
}

/** The TCP socket under a WebSocket (ws keeps it private; cork and drain live there). */
function rawSocketOf(socket: WebSocket): Socket | undefined {
  return (socket as unknown as { _socket?: Socket })._socket
}

/** Closes `socket` and cuts it if the peer does not answer the close in time. */
export function closeSocket(socket: WebSocket, code: number, reason: string): void {
  socket.close(code, reason)
  setTimeout(() => socket.terminate(), CLOSE_GRACE).unref()
}

/**
 * The sink of one socket. A class rather than closures: one lives per connection, and one
 * object with its methods on the prototype is a fraction of their size.
 */
class WebSocketSink implements SocketSink {
  #slow = false

  constructor(
    private readonly socket: WebSocket,
    private readonly maxBufferedBytes: number,
    private readonly onSlowConsumer: () => void,
  ) {}

  send(frame: string): void {
    const socket = this.socket
    if (socket.readyState !== socket.OPEN) return
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      if (!this.#slow) {
        this.#slow = true
        this.onSlowConsumer()
        closeSocket(socket, SOCKET_CLOSE.SLOW_CONSUMER, 'Slow consumer: send buffer full')
      }
      return
    }
    socket.send(frame)
  }

  batch(write: () => void): void {
    const raw = rawSocketOf(this.socket)
    raw?.cork()
    try {
      write()
    } finally {
      raw?.uncork()
    }
  }

  drained(): Promise<void> | undefined {
    const socket = this.socket
    const raw = rawSocketOf(socket)
    if (!raw || socket.readyState !== socket.OPEN) return undefined
    if (socket.bufferedAmount <= this.maxBufferedBytes / 2) return undefined
    return new Promise<void>((resolve) => {
      const done = () => {
        raw.off('drain', done)
        socket.off('close', done)
        resolve()
      }
      raw.once('drain', done)
      socket.once('close', done)
    })
  }

  isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN
  }
}

/**
 * Connects each socket of `wss` to graphql-ws's protocol `server`: sends without a promise per
 * frame, a message rate per socket, a cap on bytes waiting to be sent, and one keep-alive sweep
 * for all sockets instead of a timer each.
 */
export function serveSockets({
  wss,
  server,
  limits,
  logger,
  onSlowConsumer,
}: ServeSocketsOptions): { close(): void } {
  const unanswered = new WeakSet<WebSocket>()
  const sweep =
    limits.keepAliveMs > 0
      ? setInterval(() => {
          for (const socket of wss.clients) {
            if (unanswered.has(socket)) {
              socket.terminate()
              continue
            }
            unanswered.add(socket)
            socket.ping()
          }
        }, limits.keepAliveMs)
      : undefined
  sweep?.unref()

  wss.on('connection', (socket, request) => {
    let upgrade: IncomingMessage | undefined = request
    socket.on('pong', () => unanswered.delete(socket))
    const sink = new WebSocketSink(socket, limits.maxBufferedBytes, onSlowConsumer)
    const bucket = createTokenBucket({
      perSecond: limits.messagesPerSecond,
      burst: limits.messageBurst,
    })
    let handle: ((data: string) => Promise<void>) | undefined
    const operations = createOperationOrder((text) => {
      handle?.(text).catch((err: unknown) => {
        logger.error({ err }, 'websocket message handling failed')
        closeSocket(socket, CloseCode.InternalServerError, 'Internal server error')
      })
    })
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) => sink.send(data),
        close: (code, reason) => closeSocket(socket, code ?? 1000, reason ?? ''),
        onMessage: (cb) => {
          handle = cb
        },
      },
      {
        socket,
        takeRequest() {
          const taken = upgrade
          upgrade = undefined
          return taken
        },
        sink,
        operations,
      },
    )
    socket.on('message', (data) => {
      if (bucket.take() > 0) {
        closeSocket(socket, SOCKET_CLOSE.RATE_LIMITED, 'Too many messages')
        return
      }
      const text = String(data)
      const head = headOf(text)
      if (head && SERVER_MESSAGE_TYPES.has(head.type)) {
        closeSocket(socket, CloseCode.BadRequest, 'Invalid message received')
        return
      }
      operations.receive(text, head)
    })
    socket.on('error', (err) => logger.debug({ err }, 'websocket error'))
    socket.once('close', (code, reason) => {
      unanswered.delete(socket)
      void closed(code, String(reason))
    })
  })
  return { close: () => clearInterval(sweep) }
}
