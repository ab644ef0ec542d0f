import WebSocket from 'ws'

/** A graphql-transport-ws frame as received, parsed from JSON. */
export interface Frame {
  readonly type: string
  readonly id?: string
  readonly payload?: unknown
}

/** A raw `ws` socket speaking graphql-transport-ws by hand, for frames a real client never sends. */
export interface RawSocket {
  /** Every frame received so far, in order. */
  readonly frames: Frame[]
  /** Sends `frame` as JSON, or a string as is (malformed frames). */
  send(frame: Frame | Record<string, unknown> | string): void
  /** Sends `connection_init` with `payload` and waits for `connection_ack`. */
  init(payload?: Record<string, unknown>): Promise<void>
  /** Resolves with the first frame (already received or coming) that `match` accepts. */
  waitFor(match: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>
  /** Resolves when the socket closed, with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>
  /** Closes the socket (1000) if open and waits for the close. */
  close(): Promise<void>
}

/** Opens a raw socket with subprotocol `graphql-transport-ws` (or `protocol`); resolves once open. */
export async function openRawSocket(
  url: string,
  { protocol = 'graphql-transport-ws' }: { protocol?: string } = {},
): Promise<RawSocket> {
  const socket = new WebSocket(url, protocol)
  const frames: Frame[] = []
  let waiters: Array<() => void> = []
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() })
      for (const waiter of waiters) waiter()
    })
  })
  socket.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as Frame)
    for (const waiter of waiters) waiter()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })

  const waitFor = (match: (frame: Frame) => boolean, timeoutMs = 5_000) =>
    new Promise<Frame>((resolve, reject) => {
      const check = () => {
        const found = frames.find(match)
        if (found) {
          done()
          resolve(found)
        } else if (socket.readyState === WebSocket.CLOSED) {
          done()
          reject(new Error(`socket closed; frames: ${JSON.stringify(frames).slice(0, 1_000)}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out; frames so far: ${JSON.stringify(frames).slice(0, 1_000)}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        waiters = waiters.filter((waiter) => waiter !== check)
      }
      waiters.push(check)
      check()
    })

  return {
    frames,
    send(frame) {
      socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
    },
    async init(payload) {
      socket.send(JSON.stringify({ type: 'connection_init', ...(payload ? { payload } : {}) }))
      await waitFor((frame) => frame.type === 'connection_ack')
    },
    waitFor,
    closed,
    async close() {
      if (socket.readyState !== WebSocket.CLOSED) socket.close(1000)
      await closed
    },
  }
}
