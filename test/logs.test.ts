import { print } from 'graphql'
import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signToken } from '../src/auth/sign-token.js'
import { newConnectionId, wantsPrettyLogs } from '../src/ops/logger.js'
import { ParkingPositionsDocument, RecentEventsDocument } from './generated/graphql.js'
import { request } from './utils/http-raw.js'
import { createLot, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { openSse, type SseEvent } from './utils/sse.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import {
  connectClient,
  connected,
  nextClose,
  subscribe,
  webSocketWithHeaders,
} from './utils/ws-client.js'

type LogLine = Record<string, unknown> & { msg?: string }

/** Every line the server logged at debug level, as written (raw) and parsed. */
const written: string[] = []
const lines = () => written.map((text) => JSON.parse(text) as LogLine)

let server: TestServer
let url: string
let wsUrl: string
/** Every token sent to the server in this file, accepted or refused. */
const tokens: string[] = []
const clients: Client[] = []

async function token(...args: Parameters<typeof tokenFor>): Promise<string> {
  const signed = await tokenFor(...args)
  tokens.push(signed)
  return signed
}

beforeAll(async () => {
  server = await startTestServer({
    env: { LOG_LEVEL: 'debug' },
    logDestination: { write: (line) => written.push(line) },
  })
  ;({ url, wsUrl } = server)
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('logs', () => {
  it('never contain a token, while naming connections and operations', async () => {
    const service = await serviceToken()
    tokens.push(service)
    await createLot(url, service, 'G1')
    const operatorClaims = { sub: 'op-log', role: 'operator', scopes: ['lot:G1'] } as const

    // Accepted: a token in each place a WebSocket client may put it, each running a named
    // subscription that gets an event, then completes.
    const ways: Array<(token: string) => Client> = [
      (t) => connectClient(wsUrl, t),
      (t) =>
        connectClient(wsUrl, undefined, { connectionParams: { Authorization: `Bearer ${t}` } }),
      (t) =>
        connectClient(wsUrl, undefined, {
          webSocketImpl: webSocketWithHeaders({ Authorization: `Bearer ${t}` }),
        }),
      (t) => connectClient(`${wsUrl}?token=${encodeURIComponent(t)}`, undefined),
    ]
    for (const connect of ways) {
      const client = connect(await token(operatorClaims))
      clients.push(client)
      await connected(client)
      const sub = subscribe(client, ParkingPositionsDocument, { lotId: 'G1' })
      await probeUntilLive(
        () => sub.data.length,
        () => raiseAlert(url, service, 'G1', 'probe'),
      )
      sub.unsubscribe()
      await client.dispose()
    }

    // Accepted over HTTP: a header, and ?token= on an SSE stream.
    const reader = await token(operatorClaims)
    expect(
      (await request(url, reader, RecentEventsDocument, { channel: 'lot:G1:parking', last: 1 }))
        .status,
    ).toBe(200)
    const sseParams = new URLSearchParams({
      query: print(ParkingPositionsDocument),
      variables: JSON.stringify({ lotId: 'G1' }),
      token: await token(operatorClaims),
    })
    const sse = await openSse(`${url}?${sseParams}`)
    await probeUntilLive(
      () => sse.events.filter((event: SseEvent) => event.event === 'next').length,
      () => raiseAlert(url, service, 'G1', 'probe'),
    )
    sse.close()

    // Refused: a forged signature, an expired token and a malformed one, in each place.
    const forged = await signToken('a-different-secret-0123456789-0123456789-xyz', operatorClaims)
    tokens.push(forged)
    const expired = await token({ ...operatorClaims, expiresInSeconds: -60 })
    const malformed = 'not.a-jwt.at-all-but-secret-looking-0123456789'
    tokens.push(malformed)
    const refusedWays: Array<[(token: string) => Client, string, number]> = [
      [ways[0] as (token: string) => Client, forged, 4401],
      [ways[1] as (token: string) => Client, malformed, 4401],
      [ways[2] as (token: string) => Client, expired, 4403],
      [ways[3] as (token: string) => Client, forged, 4401],
    ]
    for (const [connect, refusedToken, code] of refusedWays) {
      const client = connect(refusedToken)
      clients.push(client)
      expect((await nextClose(client)).code).toBe(code)
    }
    for (const refusedToken of [forged, expired, malformed]) {
      const refused = await request(url, refusedToken, RecentEventsDocument, {
        channel: 'lot:G1:parking',
        last: 1,
      })
      expect(refused.result.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED')
    }
    const refusedSse = await openSse(
      `${url}?${new URLSearchParams({ query: print(ParkingPositionsDocument), variables: '{"lotId":"G1"}', token: expired })}`,
    )
    await refusedSse.ended

    // Wait for the last close to be logged, then read everything.
    await expect
      .poll(() => lines().filter((line) => line.msg === 'connection closed').length)
      .toBe(8)
    const text = written.join('')
    for (const sent of tokens) {
      expect(text).not.toContain(sent)
      const signature = sent.split('.').at(-1) as string
      expect(text).not.toContain(signature)
    }

    // Each connection has its own short id on every line about it.
    const about = lines().filter((line) => String(line.msg).startsWith('connection '))
    for (const line of about) expect(line['connectionId']).toMatch(/^[A-Za-z0-9_-]{8}$/)
    const byId = new Map<string, LogLine[]>()
    for (const line of about) {
      const id = line['connectionId'] as string
      byId.set(id, [...(byId.get(id) ?? []), line])
    }
    expect(byId.size).toBe(8)
    for (const [, connectionLines] of byId) {
      const [first, last] = [connectionLines[0], connectionLines.at(-1)]
      expect(['connection accepted', 'connection refused']).toContain(first?.msg)
      expect(last).toMatchObject({ msg: 'connection closed', code: expect.any(Number) })
    }
    const refusals = about.filter((line) => line.msg === 'connection refused')
    expect(refusals.map((line) => line['code'])).toEqual([4401, 4401, 4403, 4401])
    expect(refusals.map((line) => line['reason'])).toEqual([
      'Unauthorized: token signature invalid',
      'Unauthorized: token invalid',
      'Unauthorized: token expired',
      'Unauthorized: token signature invalid',
    ])

    // Operations: subscribe and complete, each with its connection and operation name.
    const operations = lines().filter((line) => line.msg === 'subscribe' || line.msg === 'complete')
    expect(operations).toHaveLength(8)
    for (const line of operations) {
      expect(line).toMatchObject({
        operationName: 'ParkingPositions',
        operationId: expect.any(String),
      })
      expect(byId.has(line['connectionId'] as string)).toBe(true)
    }
  })
})

describe('log format', () => {
  it('is readable only for a developer at a terminal, JSON otherwise', () => {
    expect(wantsPrettyLogs(false, { isTTY: true })).toBe(true)
    expect(wantsPrettyLogs(true, { isTTY: true })).toBe(false)
    expect(wantsPrettyLogs(false, { isTTY: false })).toBe(false)
    expect(wantsPrettyLogs(false, {})).toBe(false)
  })

  it('names connections with short random ids', () => {
    const ids = new Set(Array.from({ length: 1_000 }, newConnectionId))
    expect(ids.size).toBe(1_000)
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{8}$/)
  })
})
