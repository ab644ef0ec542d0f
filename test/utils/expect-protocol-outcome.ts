import { expect } from 'vitest'
import type { ScriptOutcome, SocketScript } from './run-socket-script.js'

const SERVER_MESSAGE_TYPES = ['connection_ack', 'ping', 'pong', 'next', 'error', 'complete']

/** The text the server reads from a step: binary frames decode as UTF-8, as the server does. */
function textOf(step: SocketScript['steps'][number]): string {
  if (step.kind === 'text') return step.data
  return step.kind === 'binary' ? Buffer.from(step.data).toString() : ''
}

/** `subscribe` ids and whether a `connection_init` went out, as the server would parse them. */
function whatWasSent(script: SocketScript) {
  const ids = new Set<string>()
  let init = false
  for (const step of script.steps) {
    try {
      const message = JSON.parse(textOf(step)) as { type?: unknown; id?: unknown }
      if (message.type === 'connection_init') init = true
      if (message.type === 'subscribe' && typeof message.id === 'string') ids.add(message.id)
    } catch {
      // not JSON: nothing to expect back
    }
  }
  return { ids, init }
}

/**
 * Checks how a scripted socket ended against graphql-transport-ws: no hang, a close code in
 * `documentedCloses`, and only well-formed server messages: `next`, `error` and `complete` for
 * ids the client subscribed with, errors with a message and never a masked unexpected one
 * (`INTERNAL_SERVER_ERROR`), at most one `connection_ack`, and only after a `connection_init`.
 */
export function expectProtocolOutcome(
  script: SocketScript,
  outcome: ScriptOutcome,
  documentedCloses: ReadonlySet<number>,
): void {
  const what = `${outcome.end} ${outcome.code ?? ''} ${outcome.reason}`
  expect(outcome.end, `hung waiting for ${outcome.hungOn}`).not.toBe('hung')
  if (script.ending !== 'abort-handshake') expect(outcome.end, what).not.toBe('refused')
  if (outcome.code !== undefined) expect(documentedCloses, what).toContain(outcome.code)
  expect(outcome.unparsable).toEqual([])
  const sent = whatWasSent(script)
  let acks = 0
  for (const frame of outcome.received) {
    const message = frame as { type?: unknown; id?: unknown; payload?: unknown }
    const shown = JSON.stringify(frame).slice(0, 300)
    expect(SERVER_MESSAGE_TYPES, shown).toContain(message.type)
    if (message.type === 'connection_ack') acks += 1
    if (message.type === 'next' || message.type === 'error' || message.type === 'complete') {
      expect(sent.ids.has(String(message.id)), `reply to an id never sent: ${shown}`).toBe(true)
    }
    const errors =
      message.type === 'error'
        ? (message.payload as unknown[])
        : ((message.payload as { errors?: unknown[] } | undefined)?.errors ?? [])
    if (message.type === 'error') expect(errors.length, shown).toBeGreaterThan(0)
    for (const error of errors as Array<{ message?: unknown; extensions?: { code?: unknown } }>) {
      expect(typeof error.message, shown).toBe('string')
      expect(error.extensions?.code, `a masked unexpected error: ${shown}`).not.toBe(
        'INTERNAL_SERVER_ERROR',
      )
    }
  }
  expect(acks, 'connection_ack messages').toBeLessThanOrEqual(sent.init ? 1 : 0)
}
