import { print } from 'graphql'
import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeCursor } from '../src/events/cursor.js'
import {
  ParkingPositionsDocument,
  type ParkingPositionsSubscription,
  RecentEventsDocument,
} from './generated/graphql.js'
import { mustExecute } from './utils/http.js'
import { createLot, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { openSse } from './utils/sse.js'
import { adminToken, serviceToken } from './utils/tokens.js'
import { connectClient, type Subscription, subscribe } from './utils/ws-client.js'

const MAX_EVENTS = 5

let server: TestServer
let service: string
let admin: string
const clients: Client[] = []

function subscribeTo(lotId: string, after?: string) {
  const client = connectClient(server.wsUrl, admin)
  clients.push(client)
  return subscribe(client, ParkingPositionsDocument, { lotId, after: after ?? null })
}

const cursorAt = (lotId: string, seq: number) =>
  encodeCursor(new Map([[`lot:${lotId}:parking`, seq]]))

/** The seqs the log still holds for lot `lotId`. */
async function loggedSeqs(lotId: string): Promise<number[]> {
  const { recentEvents } = await mustExecute(server.url, admin, RecentEventsDocument, {
    channel: `lot:${lotId}:parking`,
    last: 500,
  })
  return recentEvents.map((event) => event.seq)
}

/** Publishes `count` alerts to `lotId`; resolves with their seqs. */
async function publishAlerts(lotId: string, count: number): Promise<number[]> {
  const seqs: number[] = []
  for (let n = 1; n <= count; n += 1)
    seqs.push(await raiseAlert(server.url, service, lotId, `a${n}`))
  return seqs
}

/** Publishes `count` alerts and waits until retention has cut the log down to the newest ones. */
async function publishAndPrune(lotId: string, count: number): Promise<number[]> {
  const seqs = await publishAlerts(lotId, count)
  await expect
    .poll(() => loggedSeqs(lotId), { timeout: 10_000, interval: 50 })
    .toEqual(seqs.slice(-MAX_EVENTS))
  return seqs
}

const codeOf = (sub: Subscription<ParkingPositionsSubscription>) =>
  sub.results[0]?.errors?.[0]?.extensions?.['code']

beforeAll(async () => {
  server = await startTestServer({
    env: { RETENTION_MAX_EVENTS: String(MAX_EVENTS), RETENTION_INTERVAL_MS: '100' },
  })
  service = await serviceToken()
  admin = await adminToken()
  for (const lotId of ['E1', 'E2', 'E3']) await createLot(server.url, service, lotId)
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('resuming over a pruned log', () => {
  it('refuses a cursor older than retention with CURSOR_EXPIRED, and nothing streams', async () => {
    const seqs = await publishAndPrune('E1', 12)
    const early = subscribeTo('E1', cursorAt('E1', seqs[2] as number))
    await early.waitForEnd()
    expect(early.data).toEqual([])
    expect(codeOf(early)).toBe('CURSOR_EXPIRED')
    expect(early.results[0]?.errors?.[0]?.message).toMatch(/refetch/)
  })

  it('still resumes a recent cursor exactly: the kept events, then live', async () => {
    const seqs = await publishAndPrune('E2', 12)
    const head = seqs.at(-1) as number
    const recent = subscribeTo('E2', cursorAt('E2', head - 3))
    const replayed = await recent.waitForCount(3)
    expect(replayed.map((d) => d.parkingUpdated.seq)).toEqual([head - 2, head - 1, head])

    const live = await raiseAlert(server.url, service, 'E2', 'live')
    const [, , , next] = await recent.waitForCount(4)
    expect(next?.parkingUpdated.seq).toBe(live)
    recent.unsubscribe()
  })

  it('resumes from the oldest position retention still covers, the one right before the kept events', async () => {
    const seqs = await publishAndPrune('E3', 9)
    const oldestKept = seqs.at(-MAX_EVENTS) as number
    const fromFloor = subscribeTo('E3', cursorAt('E3', oldestKept - 1))
    const replayed = await fromFloor.waitForCount(MAX_EVENTS)
    expect(replayed.map((d) => d.parkingUpdated.seq)).toEqual(seqs.slice(-MAX_EVENTS))
    fromFloor.unsubscribe()

    const oneTooFar = subscribeTo('E3', cursorAt('E3', oldestKept - 2))
    await oneTooFar.waitForEnd()
    expect(codeOf(oneTooFar)).toBe('CURSOR_EXPIRED')
  })

  it('delivers every event to a live subscriber while pruning runs behind it', async () => {
    const sub = subscribeTo('E1')
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, 'E1', 'probe'),
    )
    const start = sub.data.length
    const seqs = await publishAlerts('E1', 3 * MAX_EVENTS)
    const received = await sub.waitForCount(start + seqs.length)
    expect(received.slice(start).map((d) => d.parkingUpdated.seq)).toEqual(seqs)
    sub.unsubscribe()
  })

  it('ends an SSE stream resumed from an expired Last-Event-ID with CURSOR_EXPIRED', async () => {
    const seqs = await publishAndPrune('E1', 8)
    const params = new URLSearchParams({
      query: print(ParkingPositionsDocument),
      variables: JSON.stringify({ lotId: 'E1' }),
      token: admin,
    })
    const stream = await openSse(`${server.url}?${params}`, {
      headers: { 'last-event-id': cursorAt('E1', seqs[0] as number) },
    })
    await stream.ended
    expect(stream.events.map((event) => event.event)).toEqual(['next', 'complete'])
    expect(JSON.parse(stream.events[0]?.data ?? '{}')).toMatchObject({
      errors: [{ extensions: { code: 'CURSOR_EXPIRED' } }],
    })
  })
})
