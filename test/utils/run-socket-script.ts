import WebSocket from 'ws'

/** One thing a scripted socket does: send a frame, or wait for `connection_ack`. */
export type ScriptStep =
  | { readonly kind: 'text'; readonly data: string }
  | { readonly kind: 'binary'; readonly data: Uint8Array }
  | { readonly kind: 'await-ack' }

/**
 * How a script ends: `sentinel` pings and waits for the pong (or a close), then closes with
 * 1000; `await-close` waits for the server to close; `close` closes with 1000 right after the
 * last frame; `terminate` drops the TCP connection without a close frame; `abort-handshake`
 * drops it before the upgrade completes.
 */
export type ScriptEnding = 'sentinel' | 'await-close' | 'close' | 'terminate' | 'abort-handshake'

/** What one socket sends, in order, and how it leaves. */
export interface SocketScript {
  readonly steps: readonly ScriptStep[]
  readonly ending: ScriptEnding
}

/**
 * How a scripted socket ended. `closed`: a close handshake, with the code the client saw
 * (1000 when it closed first and the server echoed); `aborted`: the script dropped the
 * connection itself; `refused`: the upgrade failed; `hung`: a bounded wait ran out.
 */
export interface ScriptOutcome {
  readonly end: 'closed' | 'aborted' | 'refused' | 'hung'
  readonly code: number | undefined
  readonly reason: string
  /** What the wait that ran out waited for, when `end` is `hung`. */
  readonly hungOn: string | undefined
  /** Frames the server sent, parsed. */
  readonly received: readonly unknown[]
  /** Frames the server sent that were not JSON text. */
  readonly unparsable: readonly string[]
}

export interface RunScriptOptions {
  /** How long each wait (open, ack, pong, close) may take (default 5 s); `hung` after that. */
  readonly waitMs?: number
}

const SENTINEL = 'fuzz-sentinel'

/**
 * Plays `script` on a new `ws` socket to `url` (subprotocol `graphql-transport-ws`) and
 * resolves with how it ended; never rejects for anything the server does.
 */
export async function runSocketScript(
  url: string,
  script: SocketScript,
  { waitMs = 5_000 }: RunScriptOptions = {},
): Promise<ScriptOutcome> {
  const socket = new WebSocket(url, 'graphql-transport-ws')
  const received: unknown[] = []
  const unparsable: string[] = []
  let changed: () => void = () => {}
  let status: number | undefined
  socket.on('error', () => {}) // every error also ends in 'close'
  socket.on('open', () => changed())
  socket.on('unexpected-response', (_request, response) => {
    status = response.statusCode
    socket.terminate()
  })
  socket.on('message', (data, isBinary) => {
    const text = String(data)
    try {
      if (isBinary) throw new Error('binary')
      received.push(JSON.parse(text))
    } catch {
      unparsable.push(text.slice(0, 200))
    }
    changed()
  })
  let closeEvent: { code: number; reason: string } | undefined
  const closed = new Promise<void>((resolve) => {
    socket.on('close', (code, reason) => {
      closeEvent = { code, reason: reason.toString() }
      changed()
      resolve()
    })
  })
  /** Resolves 'done' once `done()` holds, 'closed' when the socket closed first, else 'timeout'. */
  const until = (done: () => boolean) =>
    new Promise<'done' | 'closed' | 'timeout'>((resolve) => {
      const check = () => {
        if (done()) finish('done')
        else if (closeEvent) finish('closed')
      }
      const finish = (result: 'done' | 'closed' | 'timeout') => {
        clearTimeout(timer)
        changed = () => {}
        resolve(result)
      }
      const timer = setTimeout(() => finish('timeout'), waitMs)
      changed = check
      check()
    })
  const outcome = (end: ScriptOutcome['end'], hungOn?: string): ScriptOutcome => ({
    end,
    code: closeEvent?.code,
    reason: closeEvent?.reason ?? (status === undefined ? '' : `HTTP ${status}`),
    hungOn,
    received,
    unparsable,
  })
  const hang = async (what: string) => {
    socket.terminate()
    await closed
    return outcome('hung', what)
  }

  if (script.ending === 'abort-handshake') {
    socket.terminate()
    await closed
    return outcome('aborted')
  }
  if ((await until(() => socket.readyState === WebSocket.OPEN)) !== 'done') {
    if (!closeEvent) return hang('open')
    return outcome('refused')
  }
  for (const step of script.steps) {
    if (socket.readyState !== WebSocket.OPEN) break
    if (step.kind === 'await-ack') {
      const acked = await until(() => received.some((frame) => typeOf(frame) === 'connection_ack'))
      if (acked === 'timeout') return hang('connection_ack')
    } else {
      socket.send(step.data, { binary: step.kind === 'binary' })
    }
  }
  if (script.ending === 'terminate') {
    socket.terminate()
    await closed
    return outcome('aborted')
  }
  if (script.ending === 'sentinel' && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: 'ping', payload: { [SENTINEL]: true } }))
    const ponged = await until(() => received.some(isSentinelPong))
    if (ponged === 'timeout') return hang('the pong to the sentinel ping')
  }
  if (script.ending === 'await-close') {
    if ((await until(() => false)) === 'timeout') return hang('the server to close')
  }
  if (socket.readyState === WebSocket.OPEN) socket.close(1000)
  if ((await until(() => false)) === 'timeout') return hang('the close handshake')
  return outcome('closed')
}

const typeOf = (frame: unknown) =>
  typeof frame === 'object' && frame !== null ? (frame as { type?: unknown }).type : undefined

const isSentinelPong = (frame: unknown) =>
  typeOf(frame) === 'pong' &&
  (frame as { payload?: Record<string, unknown> }).payload?.[SENTINEL] === true
