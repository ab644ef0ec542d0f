import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { RawData, WebSocket, WebSocketServer } from 'ws'
import type { Limits } from '../config.js'
import type { Logger } from '../ops/logger.js'
import { createTokenBucket, type TokenBucket } from '../ops/token-bucket.js'
import type { ProtocolSocket } from './graphql-ws-protocol.js'
import { startKeepAlive } from './keep-alive.js'

/** Close codes of the socket layer, beside graphql-ws's own. */
export const SOCKET_CLOSE = {
  /** The client sent messages faster than its rate; it may reconnect (and slow down). */
  RATE_LIMITED: 4029,
  /** The client did not read its messages: its send buffer passed the cap. It resumes. */
  SLOW_CONSUMER: 4008,
} as const

const CLOSE_GRACE = 2_000 // ms a closing peer gets to answer before its socket is cut

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

/** What reads one socket's messages: the protocol session. */
export interface SocketPeer {
  /** One text message from the client, within the rate. */
  receive(text: string): void
  /** The socket closed. */
  closed(code: number, reason: string): void
}

export interface ServeSocketsOptions {
  readonly wss: WebSocketServer
  /** Makes the peer of a new socket; `request` is the upgrade request. */
  readonly open: (socket: WebSocket, request: IncomingMessage, sink: WebSocketSink) => SocketPeer
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
export class WebSocketSink implements SocketSink, ProtocolSocket {
  #slow = false

  constructor(
    readonly socket: WebSocket,
    private readonly maxBufferedBytes: number,
    private readonly onSlowConsumer: () => void,
  ) {}

  get protocol(): string {
    return this.socket.protocol
  }

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

  close(code: number, reason: string): void {
    closeSocket(this.socket, code, reason)
  }
}

/** What the socket layer keeps per socket, found from the socket by the shared listeners. */
class SocketLink {
  constructor(
    readonly peer: SocketPeer,
    readonly bucket: TokenBucket,
  ) {}
}

/**
 * Connects each socket of `wss` to the peer `open` makes for it: sends without a promise per
 * frame, a message rate per socket, a cap on bytes waiting to be sent, and one keep-alive timer
 * for all sockets instead of a timer each. The listeners are shared by all sockets (`this` is
 * the socket), so a connection holds no closures of its own here.
 */
export function serveSockets({ wss, open, limits, logger, onSlowConsumer }: ServeSocketsOptions): {
  close(): void
} {
  const links = new WeakMap<WebSocket, SocketLink>()
  const keepAlive =
    limits.keepAliveMs > 0
      ? startKeepAlive(wss, {
          intervalMs: limits.keepAliveMs,
          onError: (err) => logger.error({ err }, 'keep-alive ping failed'),
        })
      : undefined

  function onPong(this: WebSocket) {
    keepAlive?.answered(this)
  }
  function onMessage(this: WebSocket, data: RawData) {
    const link = links.get(this)
    if (!link) return
    if (link.bucket.take() > 0) {
      closeSocket(this, SOCKET_CLOSE.RATE_LIMITED, 'Too many messages')
      return
    }
    link.peer.receive(String(data))
  }
  function onError(error: Error) {
    logger.debug({ err: error }, 'websocket error')
  }
  function onClose(this: WebSocket, code: number, reason: Buffer) {
    keepAlive?.answered(this)
    const link = links.get(this)
    links.delete(this)
    link?.peer.closed(code, String(reason))
  }

  wss.on('connection', (socket, request) => {
    socket.on('pong', onPong)
    socket.on('message', onMessage)
    socket.on('error', onError)
    socket.once('close', onClose)
    const sink = new WebSocketSink(socket, limits.maxBufferedBytes, onSlowConsumer)
    const bucket = createTokenBucket({
      perSecond: limits.messagesPerSecond,
      burst: limits.messageBurst,
    })
    links.set(socket, new SocketLink(open(socket, request, sink), bucket))
  })
  return { close: () => keepAlive?.stop() }
}
