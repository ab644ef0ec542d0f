import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  CompletePaymentDocument,
  IssueTicketDocument,
  LotDocument,
  LotStatsDocument,
  type LotStatsQuery,
  ParkingPositionsDocument,
  RecentEventsDocument,
  type RecentEventsQuery,
} from './generated/graphql.js'
import { mustExecute } from './utils/http.js'
import { createLot, probeUntilLive, raiseAlert, setSpace } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { makeTestStore, type TestStore } from './utils/stores.js'
import { adminToken, serviceToken } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

const LOT = 'K1'
const CHANNEL = `lot:${LOT}:parking`

let store: TestStore | undefined
let service: string
let admin: string
let first: TestServer | undefined
let second: TestServer | undefined
const clients: Client[] = []

/** What the first server left behind, to compare after the restart. */
let before: {
  stats: LotStatsQuery['lotStats']
  log: RecentEventsQuery['recentEvents']
  spaces: Array<[string, string]>
  lastCursor: string
  lastSeq: number
}

async function snapshot(server: TestServer) {
  const { lotStats } = await mustExecute(server.url, admin, LotStatsDocument, { lotId: LOT })
  const { recentEvents } = await mustExecute(server.url, admin, RecentEventsDocument, {
    channel: CHANNEL,
    last: 500,
  })
  const { lot } = await mustExecute(server.url, admin, LotDocument, { lotId: LOT })
  const spaces = lot.spaces.map((space): [string, string] => [space.number, space.state])
  return { stats: lotStats, log: recentEvents, spaces }
}

beforeAll(async () => {
  store = await makeTestStore({ persistent: true })
  service = await serviceToken()
  admin = await adminToken()

  first = await startTestServer({ store })
  await createLot(first.url, service, LOT, ['1', '2', '3', '4', '5'])
  const client = connectClient(first.wsUrl, admin)
  clients.push(client)
  const sub = subscribe(client, ParkingPositionsDocument, { lotId: LOT })
  await probeUntilLive(
    () => sub.data.length,
    () => raiseAlert(first?.url ?? '', service, LOT, 'probe'),
  )
  await setSpace(first.url, service, LOT, '1', 'OCCUPIED')
  await setSpace(first.url, service, LOT, '2', 'RESERVED')
  const { issueTicket } = await mustExecute(first.url, service, IssueTicketDocument, {
    input: { lotId: LOT, vehiclePlate: 'RS-1', spaceNumber: '1' },
  })
  await mustExecute(first.url, service, CompletePaymentDocument, {
    input: { lotId: LOT, ticketId: issueTicket.ticketId, amount: 9.5, method: 'CARD' },
  })
  const lastSeq = await raiseAlert(first.url, service, LOT, 'last before restart')
  await vi.waitFor(() => expect(sub.data.at(-1)?.parkingUpdated.seq).toBe(lastSeq))
  const lastCursor = sub.data.at(-1)?.parkingUpdated.cursor as string
  sub.unsubscribe()
  await client.dispose()
  before = { ...(await snapshot(first)), lastCursor, lastSeq }
  await first.stop()
  first = undefined

  second = await startTestServer({ store })
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await first?.stop()
  await second?.stop()
  await store?.remove()
})

describe('restart on the same data directory', () => {
  it('keeps the lot, its stats and its event log', async () => {
    const server = second as TestServer
    const after = await snapshot(server)
    expect(before.stats).toMatchObject({ totalSpaces: 5, occupiedSpaces: 1, revenueToday: 9.5 })
    expect(after.stats).toEqual(before.stats)
    expect(after.spaces).toEqual(before.spaces)
    expect(after.log).toEqual(before.log)
    expect(after.log.map((event) => event.seq)).toEqual(
      Array.from({ length: before.lastSeq }, (_, i) => i + 1),
    )
    expect(after.log.at(-1)).toMatchObject({ seq: before.lastSeq, type: 'parking.alert' })
  })

  it('continues the sequence with no gap, and resumes an old cursor with exactly the new events', async () => {
    const server = second as TestServer
    const fresh: number[] = []
    fresh.push(await raiseAlert(server.url, service, LOT, 'first after restart'))
    fresh.push(await setSpace(server.url, service, LOT, '3', 'OCCUPIED'))
    fresh.push(await raiseAlert(server.url, service, LOT, 'second after restart'))
    expect(fresh).toEqual([before.lastSeq + 1, before.lastSeq + 2, before.lastSeq + 3])

    const client = connectClient(server.wsUrl, admin)
    clients.push(client)
    const resumed = subscribe(client, ParkingPositionsDocument, {
      lotId: LOT,
      after: before.lastCursor,
    })
    const replayed = (await resumed.waitForCount(3)).map((d) => d.parkingUpdated)
    expect(replayed.map((event) => event.seq)).toEqual(fresh)
    expect(replayed[0]).toMatchObject({ message: 'first after restart' })

    const live = await raiseAlert(server.url, service, LOT, 'live after restart')
    await resumed.waitForCount(4)
    expect(resumed.data.map((d) => d.parkingUpdated.seq)).toEqual([...fresh, live])
    expect(live).toBe(before.lastSeq + 4)
    resumed.unsubscribe()

    const { lotStats } = await mustExecute(server.url, admin, LotStatsDocument, { lotId: LOT })
    expect(lotStats).toMatchObject({ occupiedSpaces: 2, revenueToday: 9.5 })
  })
})
