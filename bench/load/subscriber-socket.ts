/**
 * One bench subscriber: a plain `ws` client speaking just enough graphql-transport-ws
 * (connection_init with a token, one `subscribe`, pong, complete) and counting the messages
 * the publisher stamped, without parsing them: the stamp (`bench|<phase>|<sent ms>`) is found
 * by `indexOf` in the raw frame, whatever the document calls the field.
 */
import WebSocket from 'ws'
import { MARK, wallClock } from '../lib/scenarios.js'

const PROTOCOL = 'graphql-transport-ws'

/** What a receiver records for stamped messages; shared by all its sockets. */
export interface StampSink {
  /** A stamped message of `phase`, sent at `sentAt`, arrived at `at` on `socket`. */
  stamped(socket: SubscriberSocket, phase: number, sentAt: number, at: number): void
  /** Anything else that is not protocol chatter: an `error`, `complete`, an unstamped `next`. */
  unexpected(socket: SubscriberSocket, what: string): void
}

export interface SubscriberOptions {
  /** The subscriber's index in its scenario. */
  readonly index: number
  readonly url: string
  readonly token: string
  readonly lotId: string
  readonly query: string
  readonly variables: Record<string, unknown>
  readonly sink: StampSink
  /** ms until `ready` rejects when no `connection_ack` came. */
  readonly timeoutMs: number
}

/** A connected subscriber. */
export interface SubscriberSocket {
  readonly index: number
  readonly lotId: string
  /** Stamped messages of the phase being counted (reset by the receiver). */
  count: number
  /** Whether any stamped message arrived since the subscribe (priming). */
  primed: boolean
  /** Closes with 1000 and resolves once the socket is closed. */
  close(): Promise<void>
}

/**
 * Opens the socket, sends `connection_init`, and after the ack the `subscribe`. Resolves once
 * the subscribe is sent; rejects when the server refuses or does not answer in time.
 */
export function openSubscriber({
  index,
  url,
  token,
  lotId,
  query,
  variables,
  sink,
  timeoutMs,
}: SubscriberOptions): Promise<SubscriberSocket> {
  const ws = new WebSocket(url, PROTOCOL, { perMessageDeflate: false, skipUTF8Validation: true })
  let closing = false
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  const subscriber: SubscriberSocket = {
    index,
    lotId,
    count: 0,
    primed: false,
    close() {
      closing = true
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(1000)
      }
      return closed
    },
  }
  return new Promise((resolve, reject) => {
    let settled = false
    const fail = (why: string) => {
      if (settled) {
        if (!closing) sink.unexpected(subscriber, why)
        return
      }
      settled = true
      clearTimeout(timer)
      ws.terminate()
      reject(new Error(why))
    }
    const timer = setTimeout(() => fail('no connection_ack in time'), timeoutMs)
    ws.on('error', (error) => fail(`socket error: ${error.message}`))
    ws.on('close', (code, reason) => fail(`closed ${code} ${reason.toString()}`))
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'connection_init', payload: { token } }))
    })
    ws.on('message', (data: Buffer) => {
      const text = data.toString()
      const mark = text.indexOf(MARK)
      if (mark !== -1) {
        const at = wallClock()
        const start = mark + MARK.length
        const bar = text.indexOf('|', start)
        const end = text.indexOf('"', bar)
        sink.stamped(
          subscriber,
          Number(text.slice(start, bar)),
          Number(text.slice(bar + 1, end)),
          at,
        )
        return
      }
      let message: { type?: string; payload?: unknown }
      try {
        message = JSON.parse(text) as typeof message
      } catch {
        return fail(`not JSON: ${text.slice(0, 80)}`)
      }
      if (message.type === 'connection_ack' && !settled) {
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }))
        settled = true
        clearTimeout(timer)
        resolve(subscriber)
      } else if (message.type === 'ping') {
        ws.send('{"type":"pong"}')
      } else if (message.type !== 'pong') {
        sink.unexpected(subscriber, `${message.type}: ${JSON.stringify(message.payload)}`)
      }
    })
  })
}
