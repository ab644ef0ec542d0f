import { print } from 'graphql'
import type { Client } from 'graphql-ws'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signToken } from '../src/auth/sign-token.js'
import { loadConfig } from '../src/config.js'
import { createMetrics } from '../src/ops/metrics.js'
import {
  ParkingPositionsDocument,
  RaiseParkingAlertDocument,
  RecentEventsDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { errorCode, request } from './utils/http-raw.js'
import { createLot, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { openSse, type SseEvent, type SseStream } from './utils/sse.js'
import { serviceToken, TEST_SECRET, tokenFor } from './utils/tokens.js'
import { connectClient, connected, nextClose, subscribe } from './utils/ws-client.js'

/** One scrape: each sample's value by `name{label="value",...}` with labels sorted. */
type Samples = ReadonlyMap<string, number>

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

function sampleKey(name: string, labels: Readonly<Record<string, string>> = {}): string {
  const pairs = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([label, value]) => `${label}="${value}"`)
  return `${name}{${pairs.join(',')}}`
}

/** Parses the Prometheus text format (what Prometheus itself reads), comments skipped. */
function parseSamples(text: string): Samples {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = SAMPLE.exec(line)
    if (!match) throw new Error(`not a sample line: ${line}`)
    const [, name = '', labelText = '', raw = ''] = match
    const labels = Object.fromEntries(
      [...labelText.matchAll(LABEL)].map(([, label = '', value = '']) => [label, value]),
    )
    samples.set(sampleKey(name, labels), raw.toLowerCase() === 'nan' ? Number.NaN : Number(raw))
  }
  return samples
}

let server: TestServer
let service: string
let operator: string
const clients: Client[] = []
const streams: SseStream[] = []

async function scrape(): Promise<Samples> {
  const response = await fetch(`${server.origin}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseSamples(await response.text())
}

/** The value of one sample; a missing sample fails the test rather than reading as 0. */
function value(samples: Samples, name: string, labels?: Record<string, string>): number {
  const found = samples.get(sampleKey(name, labels))
  if (found === undefined) throw new Error(`no sample ${sampleKey(name, labels)}`)
  return found
}

/** How much each sample named in `expected` moved from `before` to `after`. */
function deltas(
  before: Samples,
  after: Samples,
  keys: ReadonlyArray<[string, Record<string, string>?]>,
): Record<string, number> {
  return Object.fromEntries(
    keys.map(([name, labels]) => [
      sampleKey(name, labels),
      value(after, name, labels) -
        (before.has(sampleKey(name, labels)) ? value(before, name, labels) : 0),
    ]),
  )
}

const isNext = (event: SseEvent) => event.event === 'next'

/** A graphql-ws query over `client`, resolving with its single result. */
function queryOverWs(client: Client, query: string, variables: Record<string, unknown>) {
  return new Promise<unknown>((resolve, reject) => {
    let result: unknown
    client.subscribe(
      { query, variables },
      { next: (value) => (result = value), error: reject, complete: () => resolve(result) },
    )
  })
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  operator = await tokenFor({ sub: 'op-m', role: 'operator', scopes: ['lot:M1'] })
  await createLot(server.url, service, 'M1')
  await createLot(server.url, service, 'M2')
})

afterAll(async () => {
  for (const stream of streams) stream.close()
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('/metrics during real traffic', () => {
  it('serves the Prometheus text format with every metric, and process metrics', async () => {
    const samples = await scrape()
    for (const transport of ['ws', 'sse']) {
      expect(value(samples, 'switchboard_connections', { transport })).toBe(0)
      expect(value(samples, 'switchboard_messages_delivered_total', { transport })).toBe(0)
      expect(value(samples, 'switchboard_slow_consumers_dropped_total', { transport })).toBe(0)
    }
    expect(value(samples, 'switchboard_auth_refusals_total', { code: 'UNAUTHENTICATED' })).toBe(0)
    expect(value(samples, 'switchboard_auth_refusals_total', { code: 'FORBIDDEN' })).toBe(0)
    expect(value(samples, 'switchboard_database_up')).toBe(1)
    expect(value(samples, 'switchboard_bus_up')).toBe(1)
    expect(value(samples, 'switchboard_event_log_events')).toBe(0)
    expect(value(samples, 'switchboard_event_log_channels')).toBe(0)
    expect(value(samples, 'switchboard_event_log_newest_event_age_seconds')).toBeNaN()
    expect(value(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(value(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0)
  })

  it('moves exactly with subscribers, publishes, refusals and publish errors', async () => {
    // Two events before anyone subscribes; both subscribers replay them from the start.
    for (const n of [1, 2]) await raiseAlert(server.url, service, 'M1', `early ${n}`)
    const after = fromStart('lot:M1:parking')

    const subscriber = connectClient(server.wsUrl, operator)
    clients.push(subscriber)
    await connected(subscriber)
    const wsSub = subscribe(subscriber, ParkingPositionsDocument, { lotId: 'M1', after })
    const params = new URLSearchParams({
      query: print(ParkingPositionsDocument),
      variables: JSON.stringify({ lotId: 'M1', after }),
      token: operator,
    })
    const sse = await openSse(`${server.url}?${params}`)
    streams.push(sse)
    await wsSub.waitForCount(2)
    await sse.waitForEvents(2, isNext)

    const before = await scrape()
    expect(value(before, 'switchboard_connections', { transport: 'ws' })).toBe(1)
    expect(value(before, 'switchboard_connections', { transport: 'sse' })).toBe(1)
    expect(value(before, 'switchboard_subscriptions', { field: 'parkingUpdated' })).toBe(2)

    // Traffic: 4 publishes, each delivered to both subscribers; a query answered over the
    // WebSocket is not a subscription message.
    for (const n of [1, 2, 3, 4]) await raiseAlert(server.url, service, 'M1', `live ${n}`)
    const overWs = await queryOverWs(subscriber, print(RecentEventsDocument), {
      channel: 'lot:M1:parking',
      last: 1,
    })
    expect(overWs).toMatchObject({ data: { recentEvents: [{ seq: 6 }] } })
    await wsSub.waitForCount(6)
    await sse.waitForEvents(6, isNext)

    // A refused token on each transport: a forged one over WebSocket, an expired one over HTTP.
    const forged = connectClient(
      server.wsUrl,
      await signToken('another-secret-0123456789-0123456789-abcdef', { sub: 'x', role: 'admin' }),
    )
    clients.push(forged)
    expect((await nextClose(forged)).code).toBe(4401)
    const expired = await tokenFor({ sub: 'op-m', role: 'operator', expiresInSeconds: -60 })
    const refused = await request(server.url, expired, RecentEventsDocument, {
      channel: 'lot:M1:parking',
      last: 1,
    })
    expect(errorCode(refused.result)).toBe('UNAUTHENTICATED')

    // A channel outside the scopes, over WebSocket and over SSE.
    const forbiddenWs = subscribe(subscriber, ParkingPositionsDocument, { lotId: 'M2' })
    await forbiddenWs.waitForEnd()
    expect(forbiddenWs.results[0]?.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN')
    const forbiddenParams = new URLSearchParams({
      query: print(ParkingPositionsDocument),
      variables: JSON.stringify({ lotId: 'M2' }),
      token: operator,
    })
    const forbiddenSse = await openSse(`${server.url}?${forbiddenParams}`)
    streams.push(forbiddenSse)
    const [refusal] = await forbiddenSse.waitForEvents(1, isNext)
    expect(JSON.parse(refusal?.data ?? '{}')).toMatchObject({
      errors: [{ extensions: { code: 'FORBIDDEN' } }],
    })

    // Publish errors: a role that may not publish, and an invalid lot id.
    const notAllowed = await request(server.url, operator, RaiseParkingAlertDocument, {
      input: { lotId: 'M1', level: 'INFO', message: 'not mine to send' },
    })
    expect(errorCode(notAllowed.result)).toBe('FORBIDDEN')
    const badInput = await request(server.url, service, RaiseParkingAlertDocument, {
      input: { lotId: 'no spaces allowed', level: 'INFO', message: 'bad id' },
    })
    expect(errorCode(badInput.result)).toBe('BAD_USER_INPUT')

    const during = await scrape()
    expect(
      deltas(before, during, [
        ['switchboard_events_published_total', { type: 'parking.alert' }],
        ['switchboard_messages_delivered_total', { transport: 'ws' }],
        ['switchboard_messages_delivered_total', { transport: 'sse' }],
        ['switchboard_delivery_latency_seconds_count', { transport: 'ws' }],
        ['switchboard_delivery_latency_seconds_count', { transport: 'sse' }],
        ['switchboard_auth_refusals_total', { code: 'UNAUTHENTICATED' }],
        ['switchboard_auth_refusals_total', { code: 'FORBIDDEN' }],
        ['switchboard_publish_errors_total', { code: 'FORBIDDEN' }],
        ['switchboard_publish_errors_total', { code: 'BAD_USER_INPUT' }],
        ['switchboard_slow_consumers_dropped_total', { transport: 'ws' }],
        ['switchboard_event_log_events'],
        ['switchboard_event_log_channels'],
      ]),
    ).toEqual({
      'switchboard_events_published_total{type="parking.alert"}': 4,
      'switchboard_messages_delivered_total{transport="ws"}': 4,
      'switchboard_messages_delivered_total{transport="sse"}': 4,
      'switchboard_delivery_latency_seconds_count{transport="ws"}': 4,
      'switchboard_delivery_latency_seconds_count{transport="sse"}': 4,
      'switchboard_auth_refusals_total{code="UNAUTHENTICATED"}': 2,
      'switchboard_auth_refusals_total{code="FORBIDDEN"}': 2,
      'switchboard_publish_errors_total{code="FORBIDDEN"}': 1,
      'switchboard_publish_errors_total{code="BAD_USER_INPUT"}': 1,
      'switchboard_slow_consumers_dropped_total{transport="ws"}': 0,
      'switchboard_event_log_events{}': 4,
      'switchboard_event_log_channels{}': 0,
    })
    // Live events reach both subscribers within the test's time, never before they were published.
    for (const transport of ['ws', 'sse']) {
      const sum = deltas(before, during, [
        ['switchboard_delivery_latency_seconds_sum', { transport }],
      ])
      const seconds = Object.values(sum)[0] ?? Number.NaN
      expect(seconds).toBeGreaterThanOrEqual(0)
      expect(seconds).toBeLessThan(4 * 10)
      expect(
        value(during, 'switchboard_delivery_latency_seconds_bucket', { le: '+Inf', transport }),
      ).toBe(value(during, 'switchboard_delivery_latency_seconds_count', { transport }))
    }
    // Totals: every event ever published is in the log, on one channel; the newest is recent.
    expect(value(during, 'switchboard_events_published_total', { type: 'parking.alert' })).toBe(6)
    expect(value(during, 'switchboard_event_log_events')).toBe(6)
    expect(value(during, 'switchboard_event_log_channels')).toBe(1)
    const age = value(during, 'switchboard_event_log_newest_event_age_seconds')
    expect(age).toBeGreaterThanOrEqual(0)
    expect(age).toBeLessThan(30)
    // The refused socket and the refused subscriptions left nothing open.
    expect(value(during, 'switchboard_subscriptions', { field: 'parkingUpdated' })).toBe(2)

    // Everything closes: the gauges return to zero.
    wsSub.unsubscribe()
    sse.close()
    forbiddenSse.close()
    await subscriber.dispose()
    await expect
      .poll(async () => {
        const samples = await scrape()
        return [
          value(samples, 'switchboard_connections', { transport: 'ws' }),
          value(samples, 'switchboard_connections', { transport: 'sse' }),
          value(samples, 'switchboard_subscriptions', { field: 'parkingUpdated' }),
        ]
      })
      .toEqual([0, 0, 0])
  })
})

describe('METRICS_TOKEN', () => {
  const METRICS_TOKEN = 'metrics-scraper-token-0123456789'
  let guarded: TestServer
  beforeAll(async () => {
    guarded = await startTestServer({ env: { METRICS_TOKEN } })
  })
  afterAll(() => guarded?.stop())

  it('requires the bearer token when set', async () => {
    const url = `${guarded.origin}/metrics`
    const anonymous = await fetch(url)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/)
    const wrong = await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })
    expect(wrong.status).toBe(401)
    const right = await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    expect(right.status).toBe(200)
    expect(parseSamples(await right.text()).has('switchboard_database_up{}')).toBe(true)
  })

  it('is refused at start when too short to be a secret', () => {
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, METRICS_TOKEN: 'short' })).toThrow(
      /METRICS_TOKEN must be at least 16/,
    )
  })
})

describe('dependency gauges', () => {
  it('read down, and the log gauges NaN, when the database or the bus does not answer in time', async () => {
    const never = () => new Promise<never>(() => {})
    const metrics = createMetrics({
      registry: new Registry(),
      db: { ping: never, query: never },
      bus: { ping: () => Promise.reject(new Error('connection refused')) },
      probeTimeoutMs: 50,
    })
    const startedAt = Date.now()
    const samples = parseSamples(await metrics.registry.metrics())
    expect(Date.now() - startedAt).toBeLessThan(2_000)
    expect(value(samples, 'switchboard_database_up')).toBe(0)
    expect(value(samples, 'switchboard_bus_up')).toBe(0)
    expect(value(samples, 'switchboard_event_log_events')).toBeNaN()
    expect(value(samples, 'switchboard_event_log_newest_event_age_seconds')).toBeNaN()
  })
})
