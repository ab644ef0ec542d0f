import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { encodeCursor } from '../src/events/cursor.js'
import { ParkingPositionsDocument, type ParkingPositionsSubscription } from './generated/graphql.js'
import {
  createLot,
  headOf,
  probeUntilLive,
  raiseAlert,
  runConcurrently,
  setSpace,
} from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { within } from './utils/within.js'
import { connectClient, nextClose, type Subscription, subscribe } from './utils/ws-client.js'

type Position = ParkingPositionsSubscription['parkingUpdated']

let server: TestServer
let service: string
let admin: string
let operator: string
const clients: Client[] = []

function newClient(token = operator): Client {
  const client = connectClient(server.wsUrl, token)
  clients.push(client)
  return client
}

/** Disconnects `client` for real (the socket closes) and waits until it has. */
async function disconnect(client: Client): Promise<void> {
  const closed = nextClose(client)
  await client.dispose()
  await within(closed, 5_000, 'the socket to close')
}

const positions = (sub: Subscription<ParkingPositionsSubscription>): Position[] =>
  sub.data.map((d) => d.parkingUpdated)

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** The seq of the newest event of lot `lotId`'s parking channel. */
beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  admin = await adminToken()
  operator = await tokenFor({
    sub: 'op-r',
    role: 'operator',
    scopes: ['lot:R1', 'lot:R2', 'lot:R3'],
  })
  await createLot(server.url, service, 'R1')
  await createLot(server.url, service, 'R2', ['1', '2', '3', '4', '5', '6'])
  await createLot(server.url, service, 'R3')
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('resume with after:', () => {
  it('replays exactly the events missed while disconnected, in order, then goes live', async () => {
    const first = newClient()
    const sub = subscribe(first, ParkingPositionsDocument, { lotId: 'R1' })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, 'R1', 'probe'),
    )
    const live = sub.data.length
    for (const n of [1, 2, 3]) await raiseAlert(server.url, service, 'R1', `seen ${n}`)
    await sub.waitForCount(live + 3)
    const seen = positions(sub)
    const last = seen.at(-1) as Position
    expect(last).toMatchObject({ message: 'seen 3' })
    await disconnect(first)

    const missed: number[] = []
    for (const n of [1, 2, 3, 4, 5]) {
      missed.push(await raiseAlert(server.url, service, 'R1', `missed ${n}`))
    }
    missed.push(await setSpace(server.url, service, 'R1', '2', 'OCCUPIED'))
    expect(missed).toEqual(range(last.seq + 1, last.seq + 6))

    const resumed = subscribe(newClient(), ParkingPositionsDocument, {
      lotId: 'R1',
      after: last.cursor,
    })
    const replayed = (await resumed.waitForCount(6)).map((d) => d.parkingUpdated)
    expect(replayed.map((e) => e.seq)).toEqual(missed)
    expect(replayed.map((e) => ('message' in e ? e.message : e.__typename))).toEqual([
      'missed 1',
      'missed 2',
      'missed 3',
      'missed 4',
      'missed 5',
      'SpaceStateChanged',
    ])

    // Then live, and nothing replayed twice: the live event comes right after the replay.
    const liveSeq = await raiseAlert(server.url, service, 'R1', 'live')
    await resumed.waitForCount(7)
    expect(positions(resumed).map((e) => e.seq)).toEqual([...missed, liveSeq])
    expect(positions(resumed).at(-1)).toMatchObject({ message: 'live' })
    resumed.unsubscribe()
  })

  it('replays nothing when resumed at the head, and delivers what comes next', async () => {
    const sub = subscribe(newClient(), ParkingPositionsDocument, { lotId: 'R1' })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, 'R1', 'probe'),
    )
    const last = positions(sub).at(-1) as Position
    sub.unsubscribe()
    const resumed = subscribe(newClient(), ParkingPositionsDocument, {
      lotId: 'R1',
      after: last.cursor,
    })
    // Published before or after the resubscription lands, it is the first event delivered.
    const next = await raiseAlert(server.url, service, 'R1', 'next')
    const [first] = await resumed.waitForCount(1)
    expect(first?.parkingUpdated.seq).toBe(next)
    expect(next).toBe(last.seq + 1)
    resumed.unsubscribe()
  })

  it('loses and repeats nothing across many reconnects while publishers keep publishing', async () => {
    const lotId = 'R2'
    const TOTAL_PUBLISHES = 300
    const RECONNECT_EVERY = 40 // events received

    let client = newClient()
    let sub = subscribe(client, ParkingPositionsDocument, { lotId })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, lotId, 'probe'),
    )
    const firstSeq = positions(sub)[0]?.seq as number

    let publishing = true
    const spaces = ['1', '2', '3', '4', '5', '6']
    const publisher = runConcurrently(TOTAL_PUBLISHES, 6, (i) =>
      i % 3 === 0
        ? setSpace(
            server.url,
            service,
            lotId,
            spaces[i % spaces.length] as string,
            i % 2 ? 'OCCUPIED' : 'FREE',
          )
        : raiseAlert(server.url, service, lotId, `burst ${i}`),
    ).finally(() => {
      publishing = false
    })

    const received: Position[][] = []
    let reconnectsWhilePublishing = 0
    let useNewSocket = false
    while (publishing) {
      const target = sub.data.length + RECONNECT_EVERY
      const current = sub
      await vi.waitFor(
        () => {
          if (publishing && current.data.length < target) throw new Error('waiting for events')
        },
        { timeout: 20_000, interval: 5 },
      )
      if (!publishing) break
      // Stop receiving, keep what arrived, and resume after the last one.
      sub.unsubscribe()
      received.push(positions(sub))
      const cursor = received.at(-1)?.at(-1)?.cursor ?? null
      if (useNewSocket) {
        await disconnect(client)
        client = newClient()
      }
      useNewSocket = !useNewSocket
      reconnectsWhilePublishing += publishing ? 1 : 0
      sub = subscribe(client, ParkingPositionsDocument, { lotId, after: cursor })
    }
    await publisher
    const head = await headOf(server.url, admin, lotId)
    const seenSoFar = received.flat().length
    await sub.waitForCount(head - firstSeq + 1 - seenSoFar, 20_000)
    received.push(positions(sub))
    sub.unsubscribe()

    const all = received.flat().map((e) => e.seq)
    expect(reconnectsWhilePublishing).toBeGreaterThanOrEqual(3)
    expect(all.length).toBe(head - firstSeq + 1)
    expect(all).toEqual(range(firstSeq, head))
    // Every segment resumed exactly where the previous one stopped.
    for (let i = 1; i < received.length; i += 1) {
      const previous = received[i - 1]?.at(-1)?.seq as number
      if (received[i]?.length) expect(received[i]?.[0]?.seq).toBe(previous + 1)
    }
  })

  it('refuses a cursor from another lot as BAD_CURSOR, and nothing streams', async () => {
    const onR1 = subscribe(newClient(), ParkingPositionsDocument, { lotId: 'R1' })
    await probeUntilLive(
      () => onR1.data.length,
      () => raiseAlert(server.url, service, 'R1', 'probe'),
    )
    const foreignCursor = positions(onR1).at(-1)?.cursor
    onR1.unsubscribe()
    expect(foreignCursor).toBeTruthy()

    const onR3 = subscribe(newClient(), ParkingPositionsDocument, {
      lotId: 'R3',
      after: foreignCursor,
    })
    await onR3.waitForEnd()
    expect(onR3.results).toHaveLength(1)
    expect(onR3.results[0]?.errors?.[0]?.extensions?.['code']).toBe('BAD_CURSOR')
    expect(onR3.results[0]?.errors?.[0]?.message).toMatch(/another subscription/)
    expect(onR3.data).toEqual([])
  })

  it('refuses a cursor ahead of the log as BAD_CURSOR instead of skipping events', async () => {
    const head = await headOf(server.url, admin, 'R3')
    // Well formed and for the right channel, but from no history this log has: e.g. kept by
    // a client across a restore of the database from an older backup.
    const ahead = encodeCursor(new Map([['lot:R3:parking', head + 50]]))
    const sub = subscribe(newClient(), ParkingPositionsDocument, { lotId: 'R3', after: ahead })
    await raiseAlert(server.url, service, 'R3', 'would be skipped')
    await sub.waitForEnd()
    expect(sub.data).toEqual([])
    expect(sub.results[0]?.errors?.[0]?.extensions?.['code']).toBe('BAD_CURSOR')
    expect(sub.results[0]?.errors?.[0]?.message).toMatch(/ahead of the event log/)
  })
})
