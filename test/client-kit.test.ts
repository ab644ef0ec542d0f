import type { FormattedExecutionResult } from 'graphql-ws'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import {
  backoffDelay,
  type CloseInfo,
  createSwitchboardClient,
  cursorOf,
  resumeVariableOf,
  type SwitchboardClient,
  type SwitchboardClientOptions,
} from '../client/src/index.js'
import { signToken } from '../src/auth/sign-token.js'
import { ClientLotFeedDocument, type ClientLotFeedSubscription } from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { createLot, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { within } from './utils/within.js'

const WAIT = { timeout: 10_000, interval: 10 }
const FEED_QUERY =
  'subscription Feed($lot: ID!, $after: String) { parkingUpdated(lotId: $lot, after: $after) { ... on Event { seq cursor } } }'

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

function deferred<T = void>() {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

describe('backoffDelay', () => {
  it('doubles the window per attempt up to the cap and draws uniformly inside it (full jitter)', () => {
    const options = { initialDelayMs: 1_000, maxDelayMs: 30_000 }
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 40].map((attempt) =>
      backoffDelay(attempt, { ...options, random: () => 1 }),
    )
    expect(ceilings).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
    expect(backoffDelay(3, { ...options, random: () => 0 })).toBe(0)
    expect(backoffDelay(3, { ...options, random: () => 0.25 })).toBe(2_000)
    expect(backoffDelay(0)).toBeLessThan(1_000)
  })
})

describe('resumeVariableOf / cursorOf', () => {
  it('finds the variable bound to the root field’s after argument, aliased or not', () => {
    expect(resumeVariableOf(FEED_QUERY)).toBe('after')
    expect(
      resumeVariableOf(
        'subscription ($since: String) { feed: parkingUpdated(lotId: "1", after: $since) { __typename } }',
      ),
    ).toBe('since')
    // Two operations in one document: the named one counts.
    expect(
      resumeVariableOf(
        `query Q { lot(lotId: "1") { id } } ${FEED_QUERY.replace('Feed', 'F')}`,
        'F',
      ),
    ).toBe('after')
  })

  it('tracks nothing it could not resume', () => {
    expect(resumeVariableOf('subscription { parkingUpdated(lotId: "1") { __typename } }')).toBe(
      undefined,
    )
    expect(
      resumeVariableOf('subscription { parkingUpdated(lotId: "1", after: "abc") { __typename } }'),
    ).toBe(undefined)
    expect(
      resumeVariableOf('query ($after: String) { recentEvents(channel: $after) { seq } }'),
    ).toBe(undefined)
    expect(resumeVariableOf('subscription {')).toBe(undefined)
  })

  it('reads the cursor of the root field of a result', () => {
    expect(cursorOf({ data: { feed: { seq: 3, cursor: 'c3' } } })).toBe('c3')
    expect(cursorOf({ data: { statsUpdated: { freeSpaces: 3 } } })).toBe(undefined)
    expect(cursorOf({ data: null })).toBe(undefined)
    expect(cursorOf({})).toBe(undefined)
  })
})

/** A graphql-ws message the client sent. */
interface SentMessage {
  readonly type: string
  readonly id?: string
  readonly payload?: { readonly token?: string; readonly variables?: unknown }
}

/** Waits between each failed connection and the next attempt (fake ms). */
const waitsBetween = (
  sockets: ReadonlyArray<{ createdAt: number; failedAt: number | undefined }>,
) => sockets.slice(1).map((socket, i) => socket.createdAt - (sockets[i]?.failedAt ?? Number.NaN))

/**
 * A WebSocket stand-in driven by fake timers: it refuses connections (error, then 1006) until
 * `accept` is set, then acknowledges `connection_init`. Every instance is kept with the
 * (fake) time it was created and the messages the client sent on it.
 */
function fakeWebSocket() {
  const sockets: FakeSocket[] = []
  const state = { accept: false }
  class FakeSocket {
    static readonly CONNECTING = 0
    static readonly OPEN = 1
    static readonly CLOSING = 2
    static readonly CLOSED = 3
    readyState = FakeSocket.CONNECTING
    readonly createdAt = Date.now()
    /** When the connection failed or was closed (fake time). */
    failedAt: number | undefined
    readonly sent: SentMessage[] = []
    onopen: ((event: unknown) => void) | null = null
    onclose: ((event: CloseInfo) => void) | null = null
    onerror: ((event: unknown) => void) | null = null
    onmessage: ((event: { data: string }) => void) | null = null

    constructor() {
      sockets.push(this)
      setTimeout(() => {
        if (!state.accept) {
          this.readyState = FakeSocket.CLOSED
          this.failedAt = Date.now()
          this.onerror?.({ type: 'error', message: 'connect ECONNREFUSED' })
          this.onclose?.({ code: 1006, reason: '' })
          return
        }
        this.readyState = FakeSocket.OPEN
        this.onopen?.({})
      }, 0)
    }

    send(data: string) {
      const message = JSON.parse(data)
      this.sent.push(message)
      if (message.type === 'connection_init') {
        setTimeout(() => this.receive({ type: 'connection_ack' }), 0)
      }
    }

    receive(message: unknown) {
      this.onmessage?.({ data: JSON.stringify(message) })
    }

    close(code = 1000, reason = '') {
      if (this.readyState === FakeSocket.CLOSED) return
      this.readyState = FakeSocket.CLOSED
      this.failedAt = Date.now()
      setTimeout(() => this.onclose?.({ code, reason }), 0)
    }

    /** The connection breaks (no close frame). */
    drop() {
      this.readyState = FakeSocket.CLOSED
      this.failedAt = Date.now()
      this.onclose?.({ code: 1006, reason: '' })
    }
  }
  return { FakeSocket, sockets, state }
}

describe('reconnecting (fake timers, fake WebSocket)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('retries for ever with capped full-jitter backoff, restarts the backoff after a connection, and resumes from the last cursor', async () => {
    vi.useFakeTimers()
    const { FakeSocket, sockets, state } = fakeWebSocket()
    const retries: Array<{ attempt: number; delayMs: number }> = []
    const getToken = vi.fn(() => 'token-1')
    const kit = createSwitchboardClient({
      url: 'ws://switchboard.test/graphql',
      getToken,
      webSocketImpl: FakeSocket,
      backoff: { initialDelayMs: 100, maxDelayMs: 1_000, random: () => 0.5 },
      onRetry: (retry) => retries.push(retry),
    })
    const sink = { next: vi.fn(), error: vi.fn(), complete: vi.fn() }
    const payload = { query: FEED_QUERY, variables: { lot: '1', after: null } }
    kit.subscribe(payload, sink)

    await vi.advanceTimersByTimeAsync(10_000)
    // Half of min(1000, 100 * 2^n): 50, 100, 200, 400, then 500 each, and no end to attempts
    // (graphql-ws alone gives up after 5).
    const waits = waitsBetween(sockets)
    expect(waits.slice(0, 6)).toEqual([50, 100, 200, 400, 500, 500])
    expect(new Set(waits.slice(4))).toEqual(new Set([500]))
    expect(sockets.length).toBeGreaterThanOrEqual(20)
    expect(retries.slice(0, 3)).toEqual([
      { attempt: 1, delayMs: 50 },
      { attempt: 2, delayMs: 100 },
      { attempt: 3, delayMs: 200 },
    ])
    expect(sink.error).not.toHaveBeenCalled()
    expect(getToken).not.toHaveBeenCalled() // no socket opened yet

    state.accept = true
    await vi.advanceTimersByTimeAsync(600)
    const connected = sockets.at(-1) as InstanceType<typeof FakeSocket>
    expect(connected.sent.map((message) => message.type)).toEqual(['connection_init', 'subscribe'])
    expect(connected.sent[0]?.payload).toEqual({ token: 'token-1' })
    const subscribe = connected.sent[1] as SentMessage
    expect(subscribe.payload?.variables).toEqual({ lot: '1', after: null })
    connected.receive({
      id: subscribe.id,
      type: 'next',
      payload: { data: { parkingUpdated: { seq: 7, cursor: 'cursor-7' } } },
    })
    expect(sink.next).toHaveBeenCalledWith({
      data: { parkingUpdated: { seq: 7, cursor: 'cursor-7' } },
    })

    const before = sockets.length
    connected.drop()
    await vi.advanceTimersByTimeAsync(60)
    // The first retry after a connection waits the first window again.
    expect(sockets.length).toBe(before + 1)
    expect(waitsBetween(sockets.slice(-2))).toEqual([50])
    expect(retries.at(-1)).toEqual({ attempt: 1, delayMs: 50 })
    // The same subscribe payload again, now after the last delivered cursor.
    const resubscribe = sockets.at(-1)?.sent[1]
    expect(resubscribe?.id).toBe(subscribe.id)
    expect(resubscribe?.payload?.variables).toEqual({ lot: '1', after: 'cursor-7' })
    expect(getToken).toHaveBeenCalledTimes(2)
    // The caller's payload is left alone; the kit resumes from its own copy.
    expect(payload.variables.after).toBe(null)
    await kit.dispose()
  })

  it('treats a failing getToken as a failed attempt and retries it', async () => {
    vi.useFakeTimers()
    const { FakeSocket, sockets, state } = fakeWebSocket()
    state.accept = true
    const getToken = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new Error('token service unreachable'))
      .mockRejectedValueOnce(new Error('token service unreachable'))
      .mockResolvedValue('token-ok')
    const kit = createSwitchboardClient({
      url: 'ws://switchboard.test/graphql',
      getToken,
      webSocketImpl: FakeSocket,
      backoff: { initialDelayMs: 100, random: () => 0.5 },
    })
    const sink = { next: vi.fn(), error: vi.fn(), complete: vi.fn() }
    kit.subscribe({ query: FEED_QUERY, variables: { lot: '1' } }, sink)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(getToken).toHaveBeenCalledTimes(3)
    expect(waitsBetween(sockets)).toEqual([50, 100])
    expect(sockets.at(-1)?.sent[0]).toEqual({
      type: 'connection_init',
      payload: { token: 'token-ok' },
    })
    expect(sink.error).not.toHaveBeenCalled()
    await kit.dispose()
  })
})

describe('against a server', () => {
  const LOT = 'KT1'
  const CHANNEL = `lot:${LOT}:parking`
  const OTHER_SECRET = 'not-the-switchboard-secret-0123456789-abcdefgh'
  let server: TestServer
  let service: string
  const kits: SwitchboardClient[] = []

  const operatorToken = (expiresInSeconds?: number) =>
    tokenFor({
      sub: 'op-kit',
      role: 'operator',
      scopes: [`lot:${LOT}`],
      ...(expiresInSeconds ? { expiresInSeconds } : {}),
    })

  const newKit = (
    options: Partial<SwitchboardClientOptions> & Pick<SwitchboardClientOptions, 'getToken'>,
  ) => {
    const kit = createSwitchboardClient({
      url: server.wsUrl,
      webSocketImpl: WebSocket,
      backoff: { initialDelayMs: 20, maxDelayMs: 100 },
      ...options,
    })
    kits.push(kit)
    return kit
  }

  /** Reads a typed iterator in the background into `seqs`. */
  const collect = (
    events: AsyncIterableIterator<FormattedExecutionResult<ClientLotFeedSubscription>>,
  ) => {
    const seqs: number[] = []
    const done = (async () => {
      for await (const result of events) if (result.data) seqs.push(result.data.feed.seq)
    })()
    done.catch(() => {})
    return { seqs, done }
  }

  beforeAll(async () => {
    server = await startTestServer()
    service = await serviceToken()
    await createLot(server.url, service, LOT)
  })

  afterAll(async () => {
    await Promise.all(kits.map((kit) => kit.dispose()))
    await server?.stop()
  })

  it('refreshes an expiring token: 4403 at exp, a fresh token on reconnect, no event missed', async () => {
    const closes: number[] = []
    const tokens: string[] = []
    const reconnectAllowed = deferred()
    const kit = newKit({
      // Held after the close, so the publishes below happen while the kit has no socket.
      url: async () => {
        if (closes.length > 0) await reconnectAllowed.promise
        return server.wsUrl
      },
      getToken: async () => {
        const token = await operatorToken(tokens.length === 0 ? 2 : undefined)
        tokens.push(token)
        return token
      },
      on: { closed: (event) => closes.push((event as CloseInfo).code) },
    })
    const events = kit.subscribe(ClientLotFeedDocument, { lot: LOT, since: fromStart(CHANNEL) })
    const feed = collect(events)
    const before = [
      await raiseAlert(server.url, service, LOT, 'before 1'),
      await raiseAlert(server.url, service, LOT, 'before 2'),
    ]
    await vi.waitFor(() => expect(feed.seqs).toEqual(range(1, before[1] as number)), WAIT)

    await vi.waitFor(() => expect(closes).toEqual([4403]), { timeout: 5_000, interval: 10 })
    const missed: number[] = []
    for (const n of [1, 2, 3])
      missed.push(await raiseAlert(server.url, service, LOT, `missed ${n}`))
    expect(feed.seqs.at(-1)).toBe(before[1])
    reconnectAllowed.resolve()
    await vi.waitFor(() => expect(feed.seqs.at(-1)).toBe(missed.at(-1)), WAIT)
    const live = await raiseAlert(server.url, service, LOT, 'live')
    await vi.waitFor(() => expect(feed.seqs.at(-1)).toBe(live), WAIT)

    expect(feed.seqs).toEqual(range(1, live))
    expect(tokens).toHaveLength(2)
    expect(tokens[1]).not.toBe(tokens[0])
    expect(closes).toEqual([4403])
    await events.return?.()
    await feed.done
  })

  it('reconnects after a 4401 when getToken has another token', async () => {
    const forged = await signToken(OTHER_SECRET, { sub: 'op-kit', role: 'operator' })
    const good = await operatorToken()
    const getToken = vi
      .fn<() => Promise<string>>()
      .mockResolvedValueOnce(forged)
      .mockResolvedValue(good)
    const closes: number[] = []
    const onUnauthorized = vi.fn()
    const kit = newKit({
      getToken,
      onUnauthorized,
      on: { closed: (event) => closes.push((event as CloseInfo).code) },
    })
    const events = kit.subscribe(ClientLotFeedDocument, { lot: LOT, since: fromStart(CHANNEL) })
    const feed = collect(events)
    const seq = await raiseAlert(server.url, service, LOT, 'after a refused token')
    await vi.waitFor(() => expect(feed.seqs).toEqual(range(1, seq)), WAIT)
    expect(closes).toEqual([4401])
    expect(getToken).toHaveBeenCalledTimes(2)
    expect(onUnauthorized).not.toHaveBeenCalled()
    await events.return?.()
  })

  it('gives up on a 4401 when getToken has no other token: every subscription ends with it', async () => {
    const forged = await signToken(OTHER_SECRET, { sub: 'op-kit', role: 'operator' })
    const getToken = vi.fn(async () => forged)
    const unauthorized = deferred<CloseInfo>()
    const kit = newKit({ getToken, onUnauthorized: (close) => unauthorized.resolve(close) })
    const errors = [deferred<unknown>(), deferred<unknown>()]
    for (const error of errors) {
      kit.subscribe(
        { query: FEED_QUERY, variables: { lot: LOT } },
        { next: () => {}, error: error.resolve, complete: () => {} },
      )
    }
    const ended = await within(
      Promise.all(errors.map((error) => error.promise)),
      5_000,
      'both subscriptions to end',
    )
    for (const error of ended) expect((error as CloseInfo).code).toBe(4401)
    expect((await unauthorized.promise).code).toBe(4401)
    // One connection, one second opinion from getToken for both subscriptions.
    expect(getToken).toHaveBeenCalledTimes(2)
  })

  it('yields a refused subscription’s errors from the typed iterator, then ends', async () => {
    const kit = newKit({ getToken: () => operatorToken() })
    const results: Array<FormattedExecutionResult<ClientLotFeedSubscription>> = []
    const reading = (async () => {
      for await (const result of kit.subscribe(ClientLotFeedDocument, { lot: 'not-mine' })) {
        results.push(result)
      }
    })()
    await within(reading, 5_000, 'the iterator to end')
    expect(results).toHaveLength(1)
    expect(results[0]?.data ?? null).toBeNull()
    expect(results[0]?.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN')
  })
})
