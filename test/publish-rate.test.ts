import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Viewer } from '../src/auth/viewer.js'
import { loadConfig } from '../src/config.js'
import { createPublishRateLimit } from '../src/events/publish-rate-limit.js'
import { RaiseParkingAlertDocument, RecentEventsDocument } from './generated/graphql.js'
import { mustExecute } from './utils/http.js'
import { errorCode, postRaw, request } from './utils/http-raw.js'
import { createLot } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, TEST_SECRET, tokenFor } from './utils/tokens.js'
import { connectClient, connected } from './utils/ws-client.js'

const viewer = (sub: string): Viewer => ({
  sub,
  role: 'service',
  scopes: new Set(),
  expiresAt: undefined,
})

describe('publish rate limit (token bucket)', () => {
  const clock = (start = 1_000_000) => {
    let time = start
    return { now: () => time, advance: (ms: number) => (time += ms) }
  }

  it('allows a burst, then the rate, and says how long to wait', () => {
    const { now, advance } = clock()
    const limit = createPublishRateLimit({ perSecond: 2, burst: 3, now })
    const a = viewer('a')
    expect([limit.take(a), limit.take(a), limit.take(a)]).toEqual([0, 0, 0])
    expect(limit.take(a)).toBe(500)
    advance(200)
    expect(limit.take(a)).toBe(300)
    advance(300)
    expect(limit.take(a)).toBe(0)
    expect(limit.take(a)).toBe(500)
  })

  it('keeps one bucket per subject', () => {
    const { now } = clock()
    const limit = createPublishRateLimit({ perSecond: 1, burst: 1, now })
    expect(limit.take(viewer('a'))).toBe(0)
    expect(limit.take(viewer('a'))).toBeGreaterThan(0)
    expect(limit.take(viewer('b'))).toBe(0)
  })

  it('refills up to the burst, not beyond, and forgets nothing it still needs', () => {
    const { now, advance } = clock()
    const limit = createPublishRateLimit({ perSecond: 10, burst: 2, now })
    const a = viewer('a')
    limit.take(a)
    limit.take(a)
    // Long enough to sweep full buckets; `a`, refilled, is as good as new.
    advance(60_000)
    expect([limit.take(a), limit.take(a)]).toEqual([0, 0])
    expect(limit.take(a)).toBe(100)
  })

  it('drains nothing when the clock steps back', () => {
    const { now, advance } = clock()
    const limit = createPublishRateLimit({ perSecond: 1, burst: 2, now })
    limit.take(viewer('a'))
    advance(-10_000)
    expect(limit.take(viewer('a'))).toBe(0)
  })

  it('is off at 0 per second, and never applies to exempt publishers', () => {
    const off = createPublishRateLimit({ perSecond: 0, burst: 1 })
    expect(Array.from({ length: 1_000 }, () => off.take(viewer('a'))).every((w) => w === 0)).toBe(
      true,
    )
    const ingest = viewer('notify-ingest')
    const limit = createPublishRateLimit({ perSecond: 1, burst: 1, exempt: (v) => v === ingest })
    expect([limit.take(ingest), limit.take(ingest), limit.take(ingest)]).toEqual([0, 0, 0])
    expect([limit.take(viewer('notify-ingest')), limit.take(viewer('notify-ingest'))]).toEqual([
      0,
      expect.any(Number),
    ])
  })

  it('is configured by PUBLISH_RATE_PER_SECOND and PUBLISH_RATE_BURST', () => {
    const defaults = loadConfig({ JWT_SECRET: TEST_SECRET }).limits
    expect([defaults.publishPerSecond, defaults.publishBurst]).toEqual([200, 400])
    const set = loadConfig({
      JWT_SECRET: TEST_SECRET,
      PUBLISH_RATE_PER_SECOND: '0',
      PUBLISH_RATE_BURST: '5',
    }).limits
    expect([set.publishPerSecond, set.publishBurst]).toEqual([0, 5])
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, PUBLISH_RATE_BURST: '0' })).toThrow(
      /^PUBLISH_RATE_BURST must be an integer from 1/,
    )
  })
})

describe('publishing faster than the rate', () => {
  const BURST = 3
  const LOT = 'PR1'
  let server: TestServer
  let admin: string
  beforeAll(async () => {
    server = await startTestServer({
      env: { PUBLISH_RATE_PER_SECOND: '1', PUBLISH_RATE_BURST: String(BURST) },
    })
    admin = await adminToken()
    await createLot(server.url, admin, LOT)
  })
  afterAll(() => server?.stop())

  const publish = (token: string, message: string) =>
    request(server.url, token, RaiseParkingAlertDocument, {
      input: { lotId: LOT, level: 'INFO', message },
    })

  it('refuses with RATE_LIMITED (429, Retry-After) and publishes nothing; others go on; it refills', async () => {
    const busy = await tokenFor({ sub: 'busy-backend', role: 'service' })
    const other = await tokenFor({ sub: 'quiet-backend', role: 'service' })

    for (let i = 0; i < BURST; i += 1) {
      const accepted = await publish(busy, `burst-${i}`)
      expect(accepted.result.errors).toBeUndefined()
    }
    const refused = await publish(busy, 'one too many')
    expect(refused.status).toBe(429)
    expect(refused.result.data).toBeNull()
    expect(refused.result.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^publish rate exceeded for this token; retry in \d+ ms$/),
      extensions: { code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) },
    })
    const retryAfterMs = refused.result.errors?.[0]?.extensions?.['retryAfterMs'] as number
    expect(retryAfterMs).toBeGreaterThan(0)
    expect(retryAfterMs).toBeLessThanOrEqual(1_000)
    expect(refused.text).not.toContain(busy)

    // The same subject over a WebSocket: one bucket per subject, whatever the transport.
    const client = connectClient(server.wsUrl, busy)
    await connected(client)
    const overWs = await new Promise<unknown>((resolve) => {
      let result: unknown
      client.subscribe(
        {
          query: `mutation { raiseParkingAlert(input: { lotId: "${LOT}", level: INFO, message: "ws" }) { seq } }`,
        },
        { next: (value) => (result = value), error: resolve, complete: () => resolve(result) },
      )
    })
    expect(overWs).toMatchObject({ errors: [{ extensions: { code: 'RATE_LIMITED' } }] })
    await client.dispose()

    // Another token subject is not slowed down by the busy one.
    for (let i = 0; i < BURST; i += 1) {
      expect((await publish(other, `other-${i}`)).result.errors).toBeUndefined()
    }

    // Nothing refused was appended.
    const history = await mustExecute(server.url, admin, RecentEventsDocument, {
      channel: `lot:${LOT}:parking`,
      last: 50,
    })
    const messages = history.recentEvents.map(
      (event) => (event.data as { message: string }).message,
    )
    expect(messages).toEqual([
      ...Array.from({ length: BURST }, (_, i) => `burst-${i}`),
      ...Array.from({ length: BURST }, (_, i) => `other-${i}`),
    ])

    // One publish per second comes back.
    await vi.waitFor(
      async () => {
        const again = await publish(busy, 'refilled')
        expect(errorCode(again.result)).toBeUndefined()
      },
      { timeout: 3_000, interval: 100 },
    )
  })

  it('counts every publish of a document, so aliases do not get around it', async () => {
    const token = await tokenFor({ sub: 'alias-backend', role: 'service' })
    const fields = Array.from(
      { length: BURST + 2 },
      (_, i) =>
        `m${i}: raiseParkingAlert(input: { lotId: "${LOT}", level: INFO, message: "alias-${i}" }) { seq }`,
    )
    const { result } = await postRaw(
      server.url,
      JSON.stringify({ query: `mutation { ${fields.join(' ')} }` }),
      { authorization: `Bearer ${token}` },
    )
    // The first refused field ends the mutation (its result is non-null): nothing after it runs.
    expect(result.errors?.map((error) => error.extensions?.['code'])).toEqual(['RATE_LIMITED'])
    const history = await mustExecute(server.url, admin, RecentEventsDocument, {
      channel: `lot:${LOT}:parking`,
      last: 50,
    })
    const published = history.recentEvents.filter((event) =>
      /^alias-\d$/.test((event.data as { message: string }).message),
    )
    expect(published).toHaveLength(BURST)
  })

  it('leaves roles that may not publish with FORBIDDEN, not RATE_LIMITED', async () => {
    const client = await tokenFor({ sub: 'c1', role: 'client' })
    for (let i = 0; i < BURST + 1; i += 1) {
      const { result } = await publish(client, 'nope')
      expect(errorCode(result)).toBe('FORBIDDEN')
    }
  })
})
