import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, LOCAL_ORIGINS, loadConfig } from '../src/config.js'
import { createOriginPolicy } from '../src/transport/origins.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, TEST_SECRET } from './utils/tokens.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example.net'

describe('origin policy', () => {
  it('allows the local machine on any port by default, and requests without an Origin', () => {
    const { allows } = createOriginPolicy(LOCAL_ORIGINS)
    for (const origin of [
      'http://localhost:5173',
      'http://localhost',
      'https://localhost:8443',
      'http://127.0.0.1:8080',
      'http://[::1]:3000',
      undefined,
      null,
    ]) {
      expect({ origin, allowed: allows(origin) }).toEqual({ origin, allowed: true })
    }
    for (const origin of [
      EVIL,
      'http://localhost.evil.example.net:3000',
      'http://127.0.0.2:8080',
      'null',
      'file://',
      'not an origin',
    ]) {
      expect({ origin, allowed: allows(origin) }).toEqual({ origin, allowed: false })
    }
  })

  it('allows exactly the configured origins, any port only where `:*` says so', () => {
    const { allows } = createOriginPolicy([APP, 'http://partner.example.org:*'])
    expect(allows(APP)).toBe(true)
    expect(allows('https://APP.example.com')).toBe(true)
    expect(allows('http://app.example.com')).toBe(false)
    expect(allows('https://app.example.com:8443')).toBe(false)
    expect(allows('https://sub.app.example.com')).toBe(false)
    expect(allows('http://partner.example.org:9000')).toBe(true)
    expect(allows('https://partner.example.org')).toBe(false)
    expect(allows('http://localhost:3000')).toBe(false)
  })

  it('allows a page served by the instance itself (its own Host), e.g. GraphiQL or /admin', () => {
    const { allows } = createOriginPolicy([APP])
    expect(allows('https://gateway.example.com', 'gateway.example.com')).toBe(true)
    expect(allows('http://10.0.0.5:8080', '10.0.0.5:8080')).toBe(true)
    expect(allows('https://gateway.example.com', 'other.example.com')).toBe(false)
  })

  it('allows any origin with *', () => {
    expect(createOriginPolicy(['*']).allows(EVIL)).toBe(true)
  })
})

describe('ALLOWED_ORIGINS', () => {
  const load = (env: Record<string, string>) => loadConfig({ JWT_SECRET: TEST_SECRET, ...env })

  it('is required in production, naming the variable', () => {
    expect(() => load({ NODE_ENV: 'production' })).toThrow(ConfigError)
    expect(() => load({ NODE_ENV: 'production' })).toThrow(/ALLOWED_ORIGINS/)
    expect(load({ NODE_ENV: 'production', ALLOWED_ORIGINS: APP }).allowedOrigins).toEqual([APP])
  })

  it('defaults to the local machine outside production', () => {
    expect(load({}).allowedOrigins).toEqual(LOCAL_ORIGINS)
  })

  it('takes a comma-separated list, normalised as browsers send origins', () => {
    expect(
      load({
        ALLOWED_ORIGINS: ' https://App.Example.com/ , https://b.example.com:443,http://c.example:*',
      }).allowedOrigins,
    ).toEqual([APP, 'https://b.example.com', 'http://c.example:*'])
    expect(load({ ALLOWED_ORIGINS: '*' }).allowedOrigins).toEqual(['*'])
  })

  it('refuses entries that are not origins, naming the variable and the entry', () => {
    for (const entry of ['app.example.com', 'https://app.example.com/path', 'ftp://x.example']) {
      expect(() => load({ ALLOWED_ORIGINS: `${APP},${entry}` })).toThrow(
        new RegExp(`^ALLOWED_ORIGINS .*"${entry.replaceAll('.', '\\.')}"`),
      )
    }
  })
})

describe('CORS over HTTP', () => {
  let server: TestServer
  let token: string
  beforeAll(async () => {
    server = await startTestServer({ env: { ALLOWED_ORIGINS: `${APP},http://localhost:*` } })
    token = await serviceToken()
  })
  afterAll(() => server?.stop())

  const preflight = (origin: string) =>
    fetch(server.url, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    })
  const post = (headers: Record<string, string>) =>
    fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
        ...headers,
      },
      body: JSON.stringify({ query: '{ __typename }' }),
    })

  it('answers the preflight of an allowed origin with its CORS headers', async () => {
    for (const origin of [APP, 'http://localhost:5173']) {
      const response = await preflight(origin)
      expect(response.status).toBe(204)
      expect(response.headers.get('access-control-allow-origin')).toBe(origin)
      expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST')
      expect(response.headers.get('access-control-allow-headers')).toMatch(/authorization/i)
      expect(response.headers.get('access-control-allow-credentials')).toBeNull()
      expect(response.headers.get('vary')).toMatch(/Origin/)
    }
  })

  it('gives a refused origin no CORS headers, so its browser stops there', async () => {
    const response = await preflight(EVIL)
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    expect(response.headers.get('access-control-allow-methods')).toBeNull()
  })

  it('lets an allowed origin read a simple request, not a refused one', async () => {
    const allowed = await post({ origin: APP })
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP)
    expect(await allowed.json()).toEqual({ data: { __typename: 'Query' } })

    const refused = await post({ origin: EVIL })
    expect(refused.headers.get('access-control-allow-origin')).toBeNull()
    await refused.body?.cancel()
  })

  it('serves requests without an Origin (backends, CLIs) as before', async () => {
    const response = await post({})
    expect(response.status).toBe(200)
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } })
  })
})
