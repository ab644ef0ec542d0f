import type { FormattedExecutionResult } from 'graphql'
import type { Client } from 'graphql-ws'
import { decodeJwt } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { signToken } from '../src/auth/sign-token.js'
import { RoomMessageDocument, SendRoomMessageDocument } from './generated/graphql.js'
import { type ControlSubscriber, startRoomControl } from './utils/control-subscriber.js'
import { fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { errorCode, postRaw } from './utils/http-raw.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { within } from './utils/within.js'
import {
  connectClient,
  connected,
  nextClose,
  type Subscription,
  subscribe,
} from './utils/ws-client.js'

const REFRESH =
  'mutation Refresh($token: String!) { refreshToken(token: $token) { sub expiresAt } }'
const OTHER_SECRET = 'not-the-switchboard-secret-0123456789-abcdefgh'
const ROOM = 'refresh'

interface RefreshData {
  refreshToken: { sub: string; expiresAt: string | null } | null
}

let server: TestServer
let service: string
let control: ControlSubscriber
const clients: Client[] = []

/** A token of `sub` (member of the room) living `seconds` from now, and its `exp` in ms. */
async function memberToken(sub: string, seconds: number): Promise<{ token: string; exp: number }> {
  const token = await tokenFor({
    sub,
    role: 'client',
    scopes: [`room:${ROOM}`],
    expiresInSeconds: seconds,
  })
  return { token, exp: (decodeJwt(token).exp as number) * 1_000 }
}

/** Runs `refreshToken(token)` over `client`'s socket; resolves with the single result. */
function refreshOver(
  client: Client,
  token: string,
): Promise<FormattedExecutionResult<RefreshData>> {
  return new Promise((resolve, reject) => {
    let result: FormattedExecutionResult<RefreshData> | undefined
    client.subscribe<RefreshData>(
      { query: REFRESH, variables: { token } },
      {
        next: (value) => {
          result = value as FormattedExecutionResult<RefreshData>
        },
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('no result'))),
      },
    )
  })
}

/**
 * Resolves once the wall clock passed `at` (ms). What is tested here is a deadline, so the
 * test waits for the clock itself rather than for an event.
 */
function clockPast(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
}

/** Sends a message to the room and resolves once `sub` received it. */
async function expectReceived(
  sub: Subscription<{ roomMessage: { seq: number } }>,
  body: string,
): Promise<void> {
  const { sendRoomMessage } = await mustExecute(server.url, service, SendRoomMessageDocument, {
    input: { room: ROOM, body },
  })
  while (!sub.data.some((d) => d.roomMessage.seq === sendRoomMessage.seq)) {
    await sub.waitForCount(sub.data.length + 1)
  }
}

/** A client of `token` subscribed to the room, counting its connections. */
async function subscribedClient(token: string) {
  let connections = 0
  const client = connectClient(server.wsUrl, token, {
    on: {
      connected: () => {
        connections += 1
      },
    },
  })
  clients.push(client)
  const closing = nextClose(client)
  await connected(client)
  const sub = subscribe(client, RoomMessageDocument, {
    room: ROOM,
    after: fromStart({ kind: 'room', room: ROOM }),
  })
  await expectReceived(sub, 'subscribed')
  return { client, closing, sub, connections: () => connections }
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  control = await startRoomControl(server, service)
})

afterEach(async () => {
  await control.expectDelivery()
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await control?.dispose()
  await server?.stop()
})

describe('refreshToken over WebSocket', () => {
  it('moves the expiry: the socket outlives the old token and closes at the new one', async () => {
    const old = await memberToken('rt-ann', 2)
    const { client, closing, sub, connections } = await subscribedClient(old.token)

    const fresh = await memberToken('rt-ann', 4)
    expect(fresh.exp).toBeGreaterThanOrEqual(old.exp + 2_000)
    expect(await refreshOver(client, fresh.token)).toEqual({
      data: { refreshToken: { sub: 'rt-ann', expiresAt: new Date(fresh.exp).toISOString() } },
    })

    // Past the old expiry: still open, and the original subscription still delivers.
    await clockPast(old.exp + 500)
    await expectReceived(sub, 'after the old expiry')
    expect(connections()).toBe(1)
    expect(sub.error).toBeUndefined()
    expect(sub.completed).toBe(false)

    const closed = await within(closing, fresh.exp - Date.now() + 5_000, 'the close at expiry')
    expect(closed.code).toBe(4403)
    expect(closed.reason).toBe('Forbidden: token expired')
    expect(closed.at).toBeGreaterThanOrEqual(fresh.exp - 50)
    expect(closed.at).toBeLessThan(fresh.exp + 1_000)
    await sub.waitForEnd()
    expect((sub.error as { code?: number }).code).toBe(4403)
    // Everything was delivered on the one subscription: nothing was resubscribed.
    expect(connections()).toBe(1)
    expect(sub.data.map((d) => d.roomMessage.body).slice(-2)).toEqual([
      'subscribed',
      'after the old expiry',
    ])
  })

  it('refuses a token of another subject (FORBIDDEN) and invalid ones (UNAUTHENTICATED); the old expiry stands', async () => {
    const old = await memberToken('rt-bob', 2)
    const { client, closing, sub } = await subscribedClient(old.token)

    const otherSubject = await refreshOver(client, (await memberToken('rt-eve', 3_600)).token)
    expect(errorCode(otherSubject)).toBe('FORBIDDEN')
    expect(otherSubject.data?.refreshToken ?? null).toBeNull()

    const invalid = [
      signToken(OTHER_SECRET, { sub: 'rt-bob', role: 'client', scopes: [`room:${ROOM}`] }),
      tokenFor({ sub: 'rt-bob', role: 'client', scopes: [`room:${ROOM}`], expiresInSeconds: -60 }),
      Promise.resolve('not-a-jwt'),
    ]
    for (const token of await Promise.all(invalid)) {
      const refused = await refreshOver(client, token)
      expect(errorCode(refused)).toBe('UNAUTHENTICATED')
      expect(refused.data?.refreshToken ?? null).toBeNull()
    }

    // The refusals left the socket and its subscription as they were...
    await expectReceived(sub, 'after the refusals')
    // ...including the expiry of the token it connected with.
    const closed = await within(closing, old.exp - Date.now() + 5_000, 'the close at expiry')
    expect(closed.code).toBe(4403)
    expect(closed.reason).toBe('Forbidden: token expired')
    expect(closed.at).toBeGreaterThanOrEqual(old.exp - 50)
    expect(closed.at).toBeLessThan(old.exp + 1_000)
  })
})

describe('refreshToken over HTTP', () => {
  it('answers BAD_USER_INPUT: there is no connection to refresh', async () => {
    const { token } = await memberToken('rt-http', 60)
    const { result } = await postRaw<RefreshData>(
      server.url,
      JSON.stringify({ query: REFRESH, variables: { token } }),
      { authorization: `Bearer ${token}` },
    )
    expect(errorCode(result)).toBe('BAD_USER_INPUT')
    expect(result.errors?.[0]?.message).toMatch(/only works over a WebSocket/)
    expect(result.data?.refreshToken ?? null).toBeNull()
  })
})
