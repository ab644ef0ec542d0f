import { type DocumentNode, print } from 'graphql'
import type { Client } from 'graphql-ws'
import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signToken } from '../src/auth/sign-token.js'
import { ConfigError, loadConfig } from '../src/config.js'
import {
  LotDocument,
  LotStatsDocument,
  ParkingPositionsDocument,
  RaiseParkingAlertDocument,
  RecentEventsDocument,
  StatsUpdatedDocument,
  UpsertLotDocument,
} from './generated/graphql.js'
import { mustExecute } from './utils/http.js'
import { errorCode, request } from './utils/http-raw.js'
import { startJwksServer } from './utils/jwks-server.js'
import { createLot, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { openRawSocket } from './utils/raw-socket.js'
import { signRawToken } from './utils/raw-tokens.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, serviceToken, TEST_SECRET, tokenFor } from './utils/tokens.js'
import { within } from './utils/within.js'
import {
  connectClient,
  connected,
  nextClose,
  subscribe,
  webSocketWithHeaders,
} from './utils/ws-client.js'

const OTHER_SECRET = 'not-the-switchboard-secret-0123456789-abcdefgh'
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

let server: TestServer
let service: string
let admin: string
/** An operator who may see lot A1 only. */
let operator: string
const clients: Client[] = []

/** A graphql-ws client disposed after the file. */
function track(client: Client): Client {
  clients.push(client)
  return client
}

/** `/health` counts of the server under test. */
async function health(): Promise<{ connections: number; subscriptions: number }> {
  const response = await fetch(`${server.origin}/health`)
  return (await response.json()) as { connections: number; subscriptions: number }
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  admin = await adminToken()
  operator = await tokenFor({ sub: 'op-a', role: 'operator', scopes: ['lot:A1'] })
  await createLot(server.url, service, 'A1')
  await createLot(server.url, service, 'B1')
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

/** Tokens that must be refused, why, and the close code a WebSocket gets for each. */
const REFUSED: ReadonlyArray<{
  what: string
  token: () => Promise<string>
  reason: RegExp
  closeCode: number
}> = [
  {
    what: 'a bad signature',
    token: () => signToken(OTHER_SECRET, { sub: 'u1', role: 'admin' }),
    reason: /signature invalid/,
    closeCode: 4401,
  },
  {
    what: 'claims changed after signing',
    token: async () => {
      const [header, , signature] = (await tokenFor({ sub: 'u1', role: 'client' })).split('.')
      const forged = { sub: 'u1', role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 }
      return `${header}.${b64(forged)}.${signature}`
    },
    reason: /signature invalid/,
    closeCode: 4401,
  },
  {
    what: 'no signature at all (alg none)',
    token: async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u1', role: 'admin' })}.`,
    reason: /algorithm not allowed/,
    closeCode: 4401,
  },
  {
    what: 'an expired token',
    token: () => tokenFor({ sub: 'u1', role: 'admin', expiresInSeconds: -60 }),
    reason: /token expired/,
    closeCode: 4403,
  },
  {
    what: 'an unknown role',
    token: () => signRawToken({ sub: 'u1', role: 'superuser' }),
    reason: /"role" is not a known role/,
    closeCode: 4401,
  },
  {
    what: 'no sub',
    token: () => signRawToken({ role: 'admin' }),
    reason: /no "sub"/,
    closeCode: 4401,
  },
  {
    what: 'scopes that are not strings',
    token: () => signRawToken({ sub: 'u1', role: 'operator', scopes: [42] }),
    reason: /"scopes" must be an array of strings/,
    closeCode: 4401,
  },
  {
    what: 'something that is not a JWT',
    token: async () => 'not-a-jwt',
    reason: /token invalid/,
    closeCode: 4401,
  },
]

describe('authentication over HTTP', () => {
  it('refuses a request without a token: UNAUTHENTICATED, 401, no data', async () => {
    const { status, result, text } = await request(server.url, undefined, LotDocument, {
      lotId: 'A1',
    })
    expect(status).toBe(401)
    expect(errorCode(result)).toBe('UNAUTHENTICATED')
    expect(result.data ?? null).toBeNull()
    expect(text).not.toContain('Lot A1')
  })

  it.each(REFUSED)('refuses $what as UNAUTHENTICATED, saying why', async ({ token, reason }) => {
    const { status, result, text } = await request(server.url, await token(), LotDocument, {
      lotId: 'A1',
    })
    expect(status).toBe(401)
    expect(errorCode(result)).toBe('UNAUTHENTICATED')
    expect(result.errors?.[0]?.message).toMatch(reason)
    expect(result.data ?? null).toBeNull()
    expect(text).not.toContain('Lot A1')
  })

  it('accepts the token as ?token= on a GET, as a browser without headers sends it', async () => {
    const params = new URLSearchParams({
      query: print(LotDocument),
      variables: JSON.stringify({ lotId: 'A1' }),
      token: operator,
    })
    const response = await fetch(`${server.url}?${params}`, {
      headers: { accept: 'application/graphql-response+json' },
    })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { data: { lot: { name: string } } }
    expect(body.data.lot.name).toBe('Lot A1')
  })
})

describe('authentication over WebSocket', () => {
  it('closes a connection_init without a token with 4401 and never acknowledges it', async () => {
    const socket = await openRawSocket(server.wsUrl)
    socket.send({ type: 'connection_init', payload: {} })
    const { code, reason } = await socket.closed
    expect(code).toBe(4401)
    expect(reason).toMatch(/token is required/)
    expect(socket.frames).toEqual([])
  })

  it.each(REFUSED)('closes $what with its code and never acknowledges it', async (refused) => {
    const socket = await openRawSocket(server.wsUrl)
    socket.send({ type: 'connection_init', payload: { token: await refused.token() } })
    const { code, reason } = await socket.closed
    expect(code).toBe(refused.closeCode)
    expect(reason).toMatch(refused.reason)
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123)
    expect(socket.frames).toEqual([])
  })

  it('makes the graphql-ws client retry an expired token (4403) but give up on a bad one (4401)', async () => {
    const attemptsUntilGivingUp = async (token: string) => {
      let attempts = 0
      await new Promise<unknown>((resolve) => {
        track(
          connectClient(server.wsUrl, token, {
            retryAttempts: 2,
            retryWait: async () => {},
            on: { connecting: () => (attempts += 1) },
            onNonLazyError: resolve,
          }),
        )
      })
      return attempts
    }
    const expired = await tokenFor({ sub: 'u1', role: 'admin', expiresInSeconds: -60 })
    const forged = await signToken(OTHER_SECRET, { sub: 'u1', role: 'admin' })
    expect(await attemptsUntilGivingUp(expired)).toBe(3)
    expect(await attemptsUntilGivingUp(forged)).toBe(1)
  })

  const TRANSPORTS: ReadonlyArray<[string, (token: string) => Client]> = [
    ['connection_init { token }', (token) => connectClient(server.wsUrl, token)],
    [
      'connection_init { Authorization: "Bearer ..." }',
      (token) =>
        connectClient(server.wsUrl, undefined, {
          connectionParams: { Authorization: `Bearer ${token}` },
        }),
    ],
    [
      'the Authorization header of the upgrade request',
      (token) =>
        connectClient(server.wsUrl, undefined, {
          webSocketImpl: webSocketWithHeaders({ Authorization: `Bearer ${token}` }),
        }),
    ],
    [
      '?token= in the URL',
      (token) => connectClient(`${server.wsUrl}?token=${encodeURIComponent(token)}`, undefined),
    ],
  ]

  it.each(TRANSPORTS)('accepts the token from %s and verifies it', async (_how, connect) => {
    const client = track(connect(operator))
    const sub = subscribe(client, ParkingPositionsDocument, { lotId: 'A1' })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, 'A1', 'probe'),
    )
    const seq = await raiseAlert(server.url, service, 'A1', 'via transport')
    await expect.poll(() => sub.data.map((d) => d.parkingUpdated.seq)).toContain(seq)
    // The viewer is the operator of that token: lot B1 stays out of reach.
    const other = subscribe(client, ParkingPositionsDocument, { lotId: 'B1' })
    await other.waitForEnd()
    expect(other.results[0]?.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN')
    sub.unsubscribe()

    // The same way with a forged token is refused: the token is verified, not just found.
    const forgedClient = track(
      connect(await signToken(OTHER_SECRET, { sub: 'op-a', role: 'admin' })),
    )
    const closed = await nextClose(forgedClient)
    expect(closed.code).toBe(4401)
    await Promise.all([client.dispose(), forgedClient.dispose()])
  })

  it('closes the socket with 4403 when the token expires, ending its subscriptions', async () => {
    await expect.poll(health).toMatchObject({ connections: 0, subscriptions: 0 })
    const token = await tokenFor({
      sub: 'op-short',
      role: 'operator',
      scopes: ['lot:A1'],
      expiresInSeconds: 2,
    })
    const expiresAt = (decodeJwt(token).exp as number) * 1000
    const client = track(connectClient(server.wsUrl, token))
    const closing = nextClose(client)
    await connected(client)
    const sub = subscribe(client, ParkingPositionsDocument, { lotId: 'A1' })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, 'A1', 'probe'),
    )
    expect(await health()).toMatchObject({ connections: 1, subscriptions: 1 })

    const closed = await within(closing, 5_000, 'the close at expiry')
    expect(closed.code).toBe(4403)
    expect(closed.reason).toMatch(/token expired/)
    // At exp, not before (timers may fire a few ms early) and not long after.
    expect(closed.at).toBeGreaterThanOrEqual(expiresAt - 50)
    expect(closed.at).toBeLessThan(expiresAt + 1_000)
    await sub.waitForEnd()
    expect((sub.error as { code?: number }).code).toBe(4403)
    await expect.poll(health).toMatchObject({ connections: 0, subscriptions: 0 })

    // A fresh token picks up where the expired one stopped.
    const lastCursor = sub.data.at(-1)?.parkingUpdated.cursor
    const missed = await raiseAlert(server.url, service, 'A1', 'while reconnecting')
    const fresh = track(connectClient(server.wsUrl, operator))
    const resumed = subscribe(fresh, ParkingPositionsDocument, { lotId: 'A1', after: lastCursor })
    const [first] = await resumed.waitForCount(1)
    expect(first?.parkingUpdated.seq).toBe(missed)
    resumed.unsubscribe()
  })
})

describe('authorization', () => {
  it('refuses a lot outside the scopes as FORBIDDEN, the same whether it exists or not', async () => {
    const existing = await request(server.url, operator, LotDocument, { lotId: 'B1' })
    const missing = await request(server.url, operator, LotDocument, { lotId: 'no-such-lot' })
    expect(existing.status).toBe(403)
    expect(errorCode(existing.result)).toBe('FORBIDDEN')
    expect(existing.result.data ?? null).toBeNull()
    expect(existing.text).not.toContain('Lot B1')
    // Nothing tells a lot that exists from one that does not.
    expect(missing.status).toBe(existing.status)
    expect(missing.result.errors?.[0]?.message).toBe(existing.result.errors?.[0]?.message)
    expect(missing.result.errors?.[0]?.extensions).toEqual(existing.result.errors?.[0]?.extensions)

    const stats = await request(server.url, operator, LotStatsDocument, { lotId: 'B1' })
    expect(errorCode(stats.result)).toBe('FORBIDDEN')
    const log = await request(server.url, operator, RecentEventsDocument, {
      channel: 'lot:B1:parking',
    })
    expect(errorCode(log.result)).toBe('FORBIDDEN')
    expect(log.result.data ?? null).toBeNull()
  })

  it('refuses a subscription outside the scopes and sends it nothing published afterwards', async () => {
    const watcher = subscribe(track(connectClient(server.wsUrl, admin)), ParkingPositionsDocument, {
      lotId: 'B1',
    })
    await probeUntilLive(
      () => watcher.data.length,
      () => raiseAlert(server.url, service, 'B1', 'probe'),
    )
    const socket = await openRawSocket(server.wsUrl)
    await socket.init({ token: operator })
    const subscribeTo = (
      id: string,
      lotId: string,
      document: DocumentNode = ParkingPositionsDocument,
    ) =>
      socket.send({
        id,
        type: 'subscribe',
        payload: { query: print(document), variables: { lotId } },
      })

    subscribeTo('forbidden', 'B1')
    subscribeTo('forbidden-stats', 'B1', StatsUpdatedDocument)
    const refusal = await socket.waitFor((frame) => frame.id === 'forbidden')
    expect(refusal).toMatchObject({
      type: 'next',
      payload: {
        errors: [
          {
            message: 'not allowed to read this channel',
            extensions: { code: 'FORBIDDEN' },
          },
        ],
      },
    })
    expect((refusal.payload as { data?: unknown }).data ?? null).toBeNull()
    await socket.waitFor((frame) => frame.id === 'forbidden' && frame.type === 'complete')
    const statsRefusal = await socket.waitFor((frame) => frame.id === 'forbidden-stats')
    expect(JSON.stringify(statsRefusal.payload)).toContain('FORBIDDEN')

    // An allowed subscription on the same socket, live.
    subscribeTo('allowed', 'A1')
    const allowedCount = () =>
      socket.frames.filter((frame) => frame.id === 'allowed' && frame.type === 'next').length
    await probeUntilLive(allowedCount, () => raiseAlert(server.url, service, 'A1', 'probe'))

    const before = watcher.data.length
    await raiseAlert(server.url, service, 'B1', 'secret of B1')
    await watcher.waitForCount(before + 1) // it was published and fanned out
    await raiseAlert(server.url, service, 'A1', 'marker')
    await socket.waitFor((frame) => JSON.stringify(frame.payload ?? '').includes('marker'))
    expect(JSON.stringify(socket.frames)).not.toContain('secret of B1')
    expect(socket.frames.filter((frame) => frame.id === 'forbidden').map((f) => f.type)).toEqual([
      'next',
      'complete',
    ])
    await socket.close()
    watcher.unsubscribe()
  })

  it.each(['operator', 'client', 'seller', 'delivery'] as const)(
    'refuses a publish by role %s as FORBIDDEN and appends nothing',
    async (role) => {
      const token = await tokenFor({ sub: `${role}-1`, role, scopes: ['lot:A1'] })
      const head = await raiseAlert(server.url, service, 'A1', 'before')
      const refused = await request(server.url, token, RaiseParkingAlertDocument, {
        input: { lotId: 'A1', level: 'CRITICAL', message: `forged by ${role}` },
      })
      expect(refused.status).toBe(403)
      expect(errorCode(refused.result)).toBe('FORBIDDEN')
      expect(refused.result.errors?.[0]?.message).toMatch(/requires role service or admin/)
      expect(refused.result.data ?? null).toBeNull()
      const upsert = await request(server.url, token, UpsertLotDocument, {
        input: { lotId: 'A1', name: 'Renamed', spaces: ['X'] },
      })
      expect(errorCode(upsert.result)).toBe('FORBIDDEN')

      // The next publish takes the very next seq, and the log holds no forged event.
      expect(await raiseAlert(server.url, service, 'A1', 'after')).toBe(head + 1)
      const { recentEvents } = await mustExecute(server.url, admin, RecentEventsDocument, {
        channel: 'lot:A1:parking',
        last: 5,
      })
      expect(JSON.stringify(recentEvents)).not.toContain('forged by')
      const { lot } = await mustExecute(server.url, admin, LotDocument, { lotId: 'A1' })
      expect(lot.name).toBe('Lot A1')
      expect(lot.spaces.map((space) => space.number)).not.toContain('X')
    },
  )

  it('refuses a publish without a token as UNAUTHENTICATED', async () => {
    const refused = await request(server.url, undefined, RaiseParkingAlertDocument, {
      input: { lotId: 'A1', level: 'INFO', message: 'anonymous' },
    })
    expect(errorCode(refused.result)).toBe('UNAUTHENTICATED')
  })
})

describe('tokens from a JWKS (RS256)', () => {
  let jwks: Awaited<ReturnType<typeof startJwksServer>>
  let rsServer: TestServer

  beforeAll(async () => {
    jwks = await startJwksServer()
    rsServer = await startTestServer({
      withTestSecret: false,
      env: { JWT_JWKS_URL: jwks.url },
    })
  })

  afterAll(async () => {
    await rsServer?.stop()
    await jwks?.stop()
  })

  it('accepts RS256 tokens signed by a key of the set, over HTTP and WebSocket', async () => {
    const rsService = await jwks.sign({ sub: 'backend', role: 'service' })
    const rsOperator = await jwks.sign({ sub: 'op', role: 'operator', scopes: ['lot:J1'] })
    await createLot(rsServer.url, rsService, 'J1')
    const { lot } = await mustExecute(rsServer.url, rsOperator, LotDocument, { lotId: 'J1' })
    expect(lot.name).toBe('Lot J1')

    const client = track(connectClient(rsServer.wsUrl, rsOperator))
    const sub = subscribe(client, ParkingPositionsDocument, { lotId: 'J1' })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(rsServer.url, rsService, 'J1', 'probe'),
    )
    sub.unsubscribe()
    expect(jwks.fetches).toBeGreaterThanOrEqual(1)
  })

  it('refuses an HS256 token, even one signed with a secret another server trusts', async () => {
    const hs = await tokenFor({ sub: 'backend', role: 'admin' })
    const { result } = await request(rsServer.url, hs, LotDocument, { lotId: 'J1' })
    expect(errorCode(result)).toBe('UNAUTHENTICATED')
    expect(result.errors?.[0]?.message).toMatch(/algorithm not allowed/)

    const socket = await openRawSocket(rsServer.wsUrl)
    socket.send({ type: 'connection_init', payload: { token: hs } })
    expect((await socket.closed).code).toBe(4401)
  })

  it('refuses an RS256 token signed by a key outside the set', async () => {
    const { privateKey } = await generateKeyPair('RS256')
    const foreign = await new SignJWT({ sub: 'x', role: 'admin' })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key-1' })
      .setExpirationTime('1h')
      .sign(privateKey)
    const { result } = await request(rsServer.url, foreign, LotDocument, { lotId: 'J1' })
    expect(errorCode(result)).toBe('UNAUTHENTICATED')
    expect(result.errors?.[0]?.message).toMatch(/signature invalid/)
  })
})

describe('key configuration', () => {
  it('refuses to start in production without a key, naming JWT_SECRET', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(ConfigError)
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET/)
  })

  it('refuses a secret too short for HS256 and a secret together with a JWKS URL', () => {
    expect(() => loadConfig({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET/)
    expect(() =>
      loadConfig({ JWT_SECRET: TEST_SECRET, JWT_JWKS_URL: 'http://127.0.0.1:1/jwks.json' }),
    ).toThrow(ConfigError)
  })

  it('starts in production with a key, printing no dev tokens', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      JWT_SECRET: TEST_SECRET,
      // Production also requires the browser origins to be named.
      ALLOWED_ORIGINS: 'https://app.example.com',
    })
    expect(config.printDevTokens).toBe(false)
    expect(config.jwt.keys).toMatchObject({ kind: 'secret', ephemeral: false })
  })

  it('makes an ephemeral secret outside production when no key is set', () => {
    const config = loadConfig({})
    expect(config.printDevTokens).toBe(true)
    expect(config.jwt.keys).toMatchObject({ kind: 'secret', ephemeral: true })
  })
})
