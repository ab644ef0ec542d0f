import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ClientLotFeedDocument,
  ParkingPositionsDocument,
  SetSpaceStateDocument,
  UpsertLotDocument,
} from './generated/graphql.js'
import { cursorAt } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { headOf, runConcurrently } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, type Subscription, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
const clients: Client[] = []

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  await mustExecute(server.url, service, UpsertLotDocument, {
    input: { lotId: 'F1', name: 'Fan-out', spaces: ['A-1', 'A-2'] },
  })
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

/** A client of its own (one socket) for `token`. */
function clientFor(token: string): Client {
  const client = connectClient(server.wsUrl, token)
  clients.push(client)
  return client
}

/** The value of an unlabelled gauge on /metrics. */
async function gauge(name: string): Promise<number> {
  const text = await (await fetch(`${server.origin}/metrics`)).text()
  const line = text.split('\n').find((row) => row.startsWith(`${name} `))
  if (!line) throw new Error(`${name} missing from /metrics`)
  return Number(line.split(' ')[1])
}

/** Publishes `count` space changes with up to 6 in flight; returns when all committed. */
async function publish(count: number, offset = 0): Promise<void> {
  await runConcurrently(count, 6, (index) =>
    mustExecute(server.url, service, SetSpaceStateDocument, {
      input: {
        lotId: 'F1',
        spaceNumber: (offset + index) % 2 === 0 ? 'A-1' : 'A-2',
        state: (offset + index) % 4 < 2 ? 'OCCUPIED' : 'FREE',
      },
    }),
  )
}

const seqsOf = (sub: Subscription<{ [field: string]: unknown }>, field: string) =>
  sub.data.map((data) => (data[field] as { seq?: number }).seq)

describe('shared fan-out over graphql-ws', () => {
  it('shares one feed and one execution per visibility; every subscriber gets every event once, in order', async () => {
    const operators = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        tokenFor({ sub: `op-${i}`, role: 'operator', scopes: ['lot:F1'] }),
      ),
    )
    const admin = await adminToken()
    // Same document and visibility: one group, whatever the subject.
    const operatorSubs = operators.map((token) =>
      subscribe(clientFor(token), ParkingPositionsDocument, { lotId: 'F1' }),
    )
    // Another visibility (role admin), same document: a group of its own.
    const adminSubs = [0, 1].map(() =>
      subscribe(clientFor(admin), ParkingPositionsDocument, { lotId: 'F1' }),
    )
    // Another selection set on the same channel: a third group, same feed.
    const feedSubs = operators
      .slice(0, 3)
      .map((token) => subscribe(clientFor(token), ClientLotFeedDocument, { lot: 'F1' }))
    await expect.poll(() => gauge('switchboard_fanout_groups'), { timeout: 10_000 }).toBe(3)
    expect(await gauge('switchboard_fanout_feeds')).toBe(1)

    // Space changes, and the occupancy alerts they raise, all on the lot's channel.
    await publish(40)
    const head = await headOf(server.url, service, 'F1')
    const expected = Array.from({ length: head }, (_, i) => i + 1)
    for (const sub of [...operatorSubs, ...adminSubs]) {
      await sub.waitForCount(head)
      expect(seqsOf(sub as never, 'parkingUpdated')).toEqual(expected)
    }
    for (const sub of feedSubs) {
      await sub.waitForCount(head)
      expect(seqsOf(sub as never, 'feed')).toEqual(expected)
      expect(Object.keys(sub.data[0]?.feed ?? {})).toEqual(['__typename', 'seq', 'cursor'])
    }
    // One execution, one payload: the members of a group got byte-identical results.
    const first = JSON.stringify(operatorSubs[0]?.results)
    for (const sub of operatorSubs) expect(JSON.stringify(sub.results)).toBe(first)
    // Publishes run 6 at a time, so either space's change may have committed first.
    expect(operatorSubs[0]?.data[0]?.parkingUpdated).toMatchObject({
      __typename: 'SpaceStateChanged',
      channel: 'lot:F1:parking',
      spaceNumber: expect.stringMatching(/^A-[12]$/),
    })

    // Subscribers resuming from a cursor replay what they missed, then join the same group.
    const resumed = operators.slice(0, 4).map((token) =>
      subscribe(clientFor(token), ParkingPositionsDocument, {
        lotId: 'F1',
        after: cursorAt(['lot:F1:parking', 25]),
      }),
    )
    for (const sub of resumed) await sub.waitForCount(head - 25)
    await publish(20, 40)
    const newHead = await headOf(server.url, service, 'F1')
    const all = Array.from({ length: newHead }, (_, i) => i + 1)
    for (const sub of [...operatorSubs, ...adminSubs]) {
      await sub.waitForCount(newHead)
      expect(seqsOf(sub as never, 'parkingUpdated')).toEqual(all)
    }
    for (const sub of resumed) {
      await sub.waitForCount(newHead - 25)
      expect(seqsOf(sub as never, 'parkingUpdated')).toEqual(all.slice(25))
    }
    expect(await gauge('switchboard_fanout_groups')).toBe(3)

    // Groups and the feed go with their last subscriber.
    for (const sub of [...operatorSubs, ...resumed]) sub.unsubscribe()
    await expect.poll(() => gauge('switchboard_fanout_groups'), { timeout: 10_000 }).toBe(2)
    for (const sub of [...adminSubs, ...feedSubs]) sub.unsubscribe()
    await expect.poll(() => gauge('switchboard_fanout_feeds'), { timeout: 10_000 }).toBe(0)
    expect(await gauge('switchboard_fanout_groups')).toBe(0)
  })

  it('keeps a subscriber whose socket closes from disturbing the others', async () => {
    const token = await tokenFor({ sub: 'viewer-x', role: 'operator', scopes: ['lot:F1'] })
    const leaving = clientFor(token)
    const staying = subscribe(clientFor(token), ParkingPositionsDocument, { lotId: 'F1' })
    subscribe(leaving, ParkingPositionsDocument, { lotId: 'F1' })
    await expect.poll(() => gauge('switchboard_fanout_groups'), { timeout: 10_000 }).toBe(1)
    const before = await headOf(server.url, service, 'F1')
    await publish(5)
    await leaving.dispose()
    await publish(5, 5)
    const count = (await headOf(server.url, service, 'F1')) - before
    await staying.waitForCount(count)
    expect(seqsOf(staying as never, 'parkingUpdated')).toEqual(
      Array.from({ length: count }, (_, i) => before + i + 1),
    )
  })
})
