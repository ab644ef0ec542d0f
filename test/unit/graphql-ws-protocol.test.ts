import { GraphQLError } from 'graphql'
import type { ExecutionResult } from 'graphql-ws'
import { describe, expect, it } from 'vitest'
import {
  type DetachedStream,
  type ProtocolHandlers,
  ProtocolSession,
  type ProtocolSocket,
  type Started,
} from '../../src/transport/graphql-ws-protocol.js'

/** A socket that records what the session sends and how it closes. */
class RecordingSocket implements ProtocolSocket {
  readonly frames: Array<Record<string, unknown>> = []
  closedWith: { code: number; reason: string } | undefined
  constructor(readonly protocol = 'graphql-transport-ws') {}
  send(frame: string): void {
    this.frames.push(JSON.parse(frame) as Record<string, unknown>)
  }
  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason }
  }
}

/** A detached stream that counts how often it was stopped. */
class TestStream implements DetachedStream {
  stops = 0
  #listeners: Array<(failure?: { readonly error: unknown }) => void> = []
  #ended = false
  onEnded(listener: (failure?: { readonly error: unknown }) => void): void {
    this.#listeners.push(listener)
  }
  return(): void {
    this.stops += 1
    this.end()
  }
  end(failure?: { readonly error: unknown }): void {
    if (this.#ended) return
    this.#ended = true
    for (const listener of this.#listeners) listener(failure)
  }
}

/** A promise with its resolve, so a test decides when `start` finishes. */
function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

type StartResult = Started<string> | readonly GraphQLError[]

/** A session over a recording socket; `start` answers with what `starts` hands out, in order. */
function sessionWith(starts: Array<() => Promise<StartResult>>, socket = new RecordingSocket()) {
  const ended: Array<[string, string | undefined]> = []
  const closed: number[] = []
  const handlers: ProtocolHandlers<null, string> = {
    connect: async (_session, params) => params?.['token'] === 'good',
    start: () => {
      const next = starts.shift()
      if (!next) throw new Error('unexpected start')
      return next()
    },
    formatErrors: (_session, _id, errors) => errors.map((error) => ({ message: error.message })),
    sentNext: () => {},
    ended: (_session, id, data) => ended.push([id, data]),
    closed: (_session, code) => closed.push(code),
    failed: () => {},
  }
  const session = new ProtocolSession(socket, handlers, null, 0)
  const send = (message: Record<string, unknown>) => session.receive(JSON.stringify(message))
  const subscribe = (id: string) => send({ type: 'subscribe', id, payload: { query: '{ a }' } })
  const settle = () => new Promise((resolve) => setImmediate(resolve))
  return { session, socket, ended, closed, send, subscribe, settle }
}

async function acknowledged(starts: Array<() => Promise<StartResult>> = []) {
  const parts = sessionWith(starts)
  parts.send({ type: 'connection_init', payload: { token: 'good' } })
  await parts.settle()
  expect(parts.socket.frames).toEqual([{ type: 'connection_ack' }])
  parts.socket.frames.length = 0
  return parts
}

describe('ProtocolSession (graphql-transport-ws, server side)', () => {
  it('closes 4406 when the subprotocol is not graphql-transport-ws', () => {
    const { socket } = sessionWith([], new RecordingSocket('graphql-ws'))
    expect(socket.closedWith?.code).toBe(4406)
  })

  it('closes 4400 on a message that is not one, or one only a server sends', async () => {
    for (const text of ['hello', '{"type":"next","id":"1","payload":{}}', '{"type":"nope"}']) {
      const { session, socket } = await acknowledged()
      session.receive(text)
      expect(socket.closedWith, text).toEqual({ code: 4400, reason: 'Invalid message received' })
    }
  })

  it('answers a ping with a pong carrying its payload', async () => {
    const { send, socket } = sessionWith([])
    send({ type: 'ping', payload: { at: 1 } })
    send({ type: 'ping' })
    expect(socket.frames).toEqual([{ type: 'pong', payload: { at: 1 } }, { type: 'pong' }])
  })

  it('refuses a subscribe before the ack (4401), a second init (4429) and a refused init (4403)', async () => {
    const early = sessionWith([])
    early.subscribe('1')
    expect(early.socket.closedWith?.code).toBe(4401)

    const twice = await acknowledged()
    twice.send({ type: 'connection_init', payload: { token: 'good' } })
    expect(twice.socket.closedWith?.code).toBe(4429)

    const refused = sessionWith([])
    refused.send({ type: 'connection_init', payload: { token: 'bad' } })
    await refused.settle()
    expect(refused.socket.closedWith?.code).toBe(4403)
    expect(refused.socket.frames).toEqual([])
  })

  it('sends a result then complete, and errors of a refused operation', async () => {
    const { subscribe, socket, ended, settle } = await acknowledged([
      async () => ({ running: { kind: 'result', result: { data: { a: 1 } } }, data: 'one' }),
      async () => [new GraphQLError('no such field')],
    ])
    subscribe('1')
    subscribe('2')
    await settle()
    expect(socket.frames).toEqual([
      { id: '1', type: 'next', payload: { data: { a: 1 } } },
      { id: '1', type: 'complete' },
      { id: '2', type: 'error', payload: [{ message: 'no such field' }] },
    ])
    expect(ended).toEqual([
      ['1', 'one'],
      ['2', undefined],
    ])
  })

  it('closes 4409 for a subscribe with the id of a running operation', async () => {
    const stream = new TestStream()
    const { subscribe, socket, settle } = await acknowledged([
      async () => ({ running: { kind: 'detached', stream }, data: 'live' }),
    ])
    subscribe('1')
    await settle()
    subscribe('1')
    expect(socket.closedWith).toEqual({ code: 4409, reason: 'Subscriber for 1 already exists' })
  })

  it('stops an operation completed while it was set up, and holds a new subscribe with its id', async () => {
    const first = new TestStream()
    const second = new TestStream()
    const gate = deferred<StartResult>()
    const { subscribe, send, socket, ended, settle, session } = await acknowledged([
      () => gate.promise,
      async () => ({ running: { kind: 'detached', stream: second }, data: 'second' }),
    ])
    subscribe('a')
    send({ type: 'complete', id: 'a' })
    subscribe('a')
    await settle()
    // The second subscribe waits: only one operation has started.
    expect(session.operationCount()).toBe(1)
    gate.resolve({ running: { kind: 'detached', stream: first }, data: 'first' })
    await settle()
    expect(first.stops).toBe(1)
    expect(ended).toEqual([['a', 'first']])
    expect(session.dataOf('a')).toBe('second')
    expect(socket.frames, 'nothing sent for the completed operation').toEqual([])
  })

  it('turns the failure of a detached stream into an error message, and ends it once', async () => {
    const stream = new TestStream()
    const { subscribe, socket, ended, settle } = await acknowledged([
      async () => ({ running: { kind: 'detached', stream }, data: 'live' }),
    ])
    subscribe('1')
    await settle()
    stream.end({ error: new Error('access revoked') })
    expect(socket.frames).toEqual([
      { id: '1', type: 'error', payload: [{ message: 'access revoked' }] },
    ])
    expect(ended).toEqual([['1', 'live']])
  })

  it('streams results until the client completes, then stops the stream and sends nothing more', async () => {
    const queued: ExecutionResult[] = [{ data: { n: 1 } }, { data: { n: 2 } }]
    let waiting: ((step: IteratorResult<ExecutionResult>) => void) | undefined
    let returns = 0
    const results: AsyncIterableIterator<ExecutionResult> = {
      [Symbol.asyncIterator]() {
        return this
      },
      next() {
        const value = queued.shift()
        if (value) return Promise.resolve({ done: false, value })
        return new Promise((resolve) => {
          waiting = resolve
        })
      },
      return() {
        returns += 1
        waiting?.({ done: true, value: undefined })
        return Promise.resolve({ done: true, value: undefined })
      },
    }
    const { subscribe, send, socket, ended, settle } = await acknowledged([
      async () => ({ running: { kind: 'stream', stream: results }, data: 'stream' }),
    ])
    subscribe('s')
    await settle()
    expect(socket.frames.map((frame) => frame['payload'])).toEqual([
      { data: { n: 1 } },
      { data: { n: 2 } },
    ])
    send({ type: 'complete', id: 's' })
    await settle()
    expect(returns).toBe(1)
    expect(socket.frames, 'no complete the client did not ask for').toHaveLength(2)
    expect(ended).toEqual([['s', 'stream']])
  })

  it('ends every operation when the socket closes, each once, before telling the application', async () => {
    const live = new TestStream()
    const gate = deferred<StartResult>()
    const late = new TestStream()
    const { subscribe, session, ended, closed, settle } = await acknowledged([
      async () => ({ running: { kind: 'detached', stream: live }, data: 'live' }),
      () => gate.promise,
    ])
    subscribe('1')
    subscribe('2')
    await settle()
    session.closed(1000, '')
    expect(live.stops).toBe(1)
    expect(ended).toEqual([['1', 'live']])
    expect(closed).toEqual([1000])
    // Still starting at the close: it ends once `start` resolves, with what it gave.
    gate.resolve({ running: { kind: 'detached', stream: late }, data: 'late' })
    await settle()
    expect(late.stops).toBe(1)
    expect(ended).toEqual([
      ['1', 'live'],
      ['2', 'late'],
    ])
  })
})
