import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  CompletePaymentDocument,
  IssueTicketDocument,
  LotDocument,
  LotStatsDocument,
  ParkingUpdatedDocument,
  RaiseParkingAlertDocument,
  RecentEventsDocument,
  SetSpaceStateDocument,
  type SpaceState,
  StatsUpdatedDocument,
  UpsertLotDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
let operator: string
let client: Client

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  operator = await tokenFor({ sub: 'op-1', role: 'operator', scopes: ['lot:P1', 'lot:P2'] })
  client = connectClient(server.wsUrl, operator)
  await mustExecute(server.url, service, UpsertLotDocument, {
    input: {
      lotId: 'P1',
      name: 'Central',
      spaces: ['A-1', 'A-2', 'A-3', 'A-4'],
      alertThreshold: 0.75,
    },
  })
})

afterAll(async () => {
  await client?.dispose()
  await server?.stop()
})

describe('parking', () => {
  it('delivers every kind of parking event over graphql-ws, typed and with a cursor', async () => {
    const sub = subscribe(client, ParkingUpdatedDocument, {
      lotId: 'P1',
      after: fromStart('lot:P1:parking'),
    })
    await mustExecute(server.url, service, RaiseParkingAlertDocument, {
      input: { lotId: 'P1', level: 'INFO', message: 'probe' },
    })
    await sub.waitForCount(1)

    await mustExecute(server.url, service, SetSpaceStateDocument, {
      input: {
        lotId: 'P1',
        spaceNumber: 'A-1',
        state: 'OCCUPIED',
        vehiclePlate: 'AB-123',
        customerName: 'Ana',
      },
    })
    const ticket = await mustExecute(server.url, service, IssueTicketDocument, {
      input: { lotId: 'P1', vehiclePlate: 'AB-123', spaceNumber: 'A-1' },
    })
    await mustExecute(server.url, service, CompletePaymentDocument, {
      input: { lotId: 'P1', ticketId: ticket.issueTicket.ticketId, amount: 12.5, method: 'CARD' },
    })
    const events = (await sub.waitForCount(4)).map((d) => d.parkingUpdated)
    sub.unsubscribe()

    expect(events.map((e) => e.__typename)).toEqual([
      'ParkingAlert',
      'SpaceStateChanged',
      'TicketIssued',
      'PaymentCompleted',
    ])
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4])
    for (const event of events) {
      expect(event.channel).toBe('lot:P1:parking')
      expect(event.cursor).toMatch(/^c1\./)
    }
    expect(events[1]).toMatchObject({
      spaceNumber: 'A-1',
      previousState: 'FREE',
      state: 'OCCUPIED',
      vehiclePlate: 'AB-123',
      customerName: 'Ana',
    })
    expect(events[2]).toMatchObject({ vehiclePlate: 'AB-123', assignedSpace: 'A-1' })
    expect(events[3]).toMatchObject({
      amount: 12.5,
      method: 'CARD',
      ticketId: ticket.issueTicket.ticketId,
    })
  })

  it('raises the occupancy alert itself once when the threshold is crossed, and clears it', async () => {
    await mustExecute(server.url, service, UpsertLotDocument, {
      input: { lotId: 'P2', name: 'Small', spaces: ['1', '2', '3', '4'], alertThreshold: 0.75 },
    })
    const sub = subscribe(client, ParkingUpdatedDocument, {
      lotId: 'P2',
      after: fromStart('lot:P2:parking'),
    })
    const set = (spaceNumber: string, state: 'OCCUPIED' | 'FREE') =>
      mustExecute(server.url, service, SetSpaceStateDocument, {
        input: { lotId: 'P2', spaceNumber, state },
      })
    await mustExecute(server.url, service, RaiseParkingAlertDocument, {
      input: { lotId: 'P2', level: 'INFO', message: 'probe' },
    })
    await sub.waitForCount(1)
    await set('1', 'OCCUPIED')
    await set('2', 'OCCUPIED')
    await set('3', 'OCCUPIED') // 75 %: crosses
    await set('4', 'OCCUPIED') // still above: no second alert
    await set('4', 'FREE')
    await set('3', 'FREE') // 50 %: back below
    const events = (await sub.waitForCount(9)).map((d) => d.parkingUpdated)
    sub.unsubscribe()
    const alerts = events.filter((e) => e.__typename === 'ParkingAlert' && e.automatic)
    expect(alerts).toHaveLength(2)
    expect(alerts[0]).toMatchObject({ level: 'WARNING', actionRequired: true })
    expect(alerts[0]?.__typename === 'ParkingAlert' && alerts[0].message).toContain('75%')
    expect(alerts[1]).toMatchObject({ level: 'INFO', actionRequired: false })
    // The alert comes right after the change that crossed the threshold.
    expect(events.map((e) => e.__typename)).toEqual([
      'ParkingAlert',
      'SpaceStateChanged',
      'SpaceStateChanged',
      'SpaceStateChanged',
      'ParkingAlert',
      'SpaceStateChanged',
      'SpaceStateChanged',
      'SpaceStateChanged',
      'ParkingAlert',
    ])
  })

  it('answers lot and stats queries from the projections', async () => {
    const { lot } = await mustExecute(server.url, operator, LotDocument, { lotId: 'P1' })
    expect(lot.name).toBe('Central')
    expect(lot.spaces.map((s) => [s.number, s.state])).toEqual([
      ['A-1', 'OCCUPIED'],
      ['A-2', 'FREE'],
      ['A-3', 'FREE'],
      ['A-4', 'FREE'],
    ])
    expect(lot.stats).toMatchObject({
      totalSpaces: 4,
      occupiedSpaces: 1,
      freeSpaces: 3,
      revenueToday: 12.5,
    })
    const recent = await mustExecute(server.url, operator, RecentEventsDocument, {
      channel: 'lot:P1:parking',
      last: 2,
    })
    expect(recent.recentEvents.map((e) => [e.seq, e.type])).toEqual([
      [3, 'parking.ticketIssued'],
      [4, 'parking.paymentCompleted'],
    ])
  })

  it('keeps concurrent changes chained and raises the alert once per crossing', async () => {
    await mustExecute(server.url, service, UpsertLotDocument, {
      input: { lotId: 'busy', name: 'Busy', spaces: ['1', '2'], alertThreshold: 0.5 },
    })
    const watcher = connectClient(
      server.wsUrl,
      await tokenFor({ sub: 'op-2', role: 'operator', scopes: ['lot:busy'] }),
    )
    const sub = subscribe(watcher, ParkingUpdatedDocument, {
      lotId: 'busy',
      after: fromStart('lot:busy:parking'),
    })
    const states: SpaceState[] = ['OCCUPIED', 'FREE', 'RESERVED']
    // 40 changes in flight at once on two spaces: each row is contended, and so is the alert.
    const changes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        mustExecute(server.url, service, SetSpaceStateDocument, {
          input: {
            lotId: 'busy',
            spaceNumber: String(1 + (i % 2)),
            state: states[(i * 7) % 3] as SpaceState,
          },
        }).then((result) => result.setSpaceState),
      ),
    )
    await mustExecute(server.url, service, RaiseParkingAlertDocument, {
      input: { lotId: 'busy', level: 'INFO', message: 'end of test' },
    })
    // The manual alert published last marks the end of the stream.
    await vi.waitFor(
      () => expect(sub.data.at(-1)?.parkingUpdated).toMatchObject({ automatic: false }),
      { timeout: 20_000, interval: 50 },
    )
    const events = sub.data.map((d) => d.parkingUpdated)
    await watcher.dispose()
    // Per space, in seq order, each change starts from the state the one before left.
    const last = new Map<string, string>([
      ['1', 'FREE'],
      ['2', 'FREE'],
    ])
    for (const change of [...changes].sort((a, b) => a.seq - b.seq)) {
      expect(change.previousState).toBe(last.get(change.spaceNumber))
      last.set(change.spaceNumber, change.state)
    }
    // Replayed in log order, an automatic alert follows exactly the changes that cross 50 %.
    const now = new Map([...last.keys()].map((space) => [space, 'FREE']))
    let above = false
    let expectAlert = false
    for (const event of events) {
      if (event.__typename === 'SpaceStateChanged') {
        expect(expectAlert).toBe(false)
        now.set(event.spaceNumber, event.state)
        const occupied = [...now.values()].filter((state) => state === 'OCCUPIED').length
        expectAlert = occupied / now.size >= 0.5 !== above
        above = occupied / now.size >= 0.5
      } else if (event.__typename === 'ParkingAlert' && event.automatic) {
        expect(expectAlert).toBe(true)
        expect(event.actionRequired).toBe(above)
        expectAlert = false
      }
    }
  })

  it('streams stats: the snapshot first, then coalesced updates that match a count done here', async () => {
    await mustExecute(server.url, service, UpsertLotDocument, {
      input: { lotId: 'P3', name: 'Stats', spaces: ['1', '2', '3', '4', '5'] },
    })
    const admin = await tokenFor({ sub: 'a', role: 'admin' })
    const adminClient = connectClient(server.wsUrl, admin)
    const sub = subscribe(adminClient, StatsUpdatedDocument, { lotId: 'P3' })
    const [first] = await sub.waitForCount(1)
    expect(first?.statsUpdated).toMatchObject({
      totalSpaces: 5,
      freeSpaces: 5,
      occupiedSpaces: 0,
      revenueToday: 0,
    })

    const states = new Map(['1', '2', '3', '4', '5'].map((n) => [n, 'FREE']))
    let revenue = 0
    const changes: Array<[string, 'OCCUPIED' | 'FREE' | 'RESERVED' | 'OUT_OF_SERVICE']> = [
      ['1', 'OCCUPIED'],
      ['2', 'OCCUPIED'],
      ['3', 'RESERVED'],
      ['1', 'FREE'],
      ['4', 'OUT_OF_SERVICE'],
      ['5', 'OCCUPIED'],
    ]
    for (const [spaceNumber, state] of changes) {
      await mustExecute(server.url, service, SetSpaceStateDocument, {
        input: { lotId: 'P3', spaceNumber, state },
      })
      states.set(spaceNumber, state)
    }
    for (const [i, amount] of [4, 7.25, 1.5].entries()) {
      const ticketId = `P3-T${i}`
      await mustExecute(server.url, service, IssueTicketDocument, {
        input: { lotId: 'P3', ticketId, vehiclePlate: `X${i}` },
      })
      await mustExecute(server.url, service, CompletePaymentDocument, {
        input: { lotId: 'P3', ticketId, amount, method: 'CASH' },
      })
      revenue += amount
    }
    const count = (state: string) => [...states.values()].filter((s) => s === state).length
    const expected = {
      lotId: 'P3',
      totalSpaces: 5,
      freeSpaces: count('FREE'),
      occupiedSpaces: count('OCCUPIED'),
      reservedSpaces: count('RESERVED'),
      outOfServiceSpaces: count('OUT_OF_SERVICE'),
      occupancyRate: count('OCCUPIED') / 5,
      revenueToday: revenue,
    }
    const { lotStats } = await mustExecute(server.url, service, LotStatsDocument, { lotId: 'P3' })
    expect(lotStats).toEqual(expected)
    await expect.poll(() => sub.data.at(-1)?.statsUpdated, { timeout: 5_000 }).toEqual(expected)
    // 12 changes, coalesced: far fewer messages than changes.
    expect(sub.data.length).toBeLessThan(12)
    sub.unsubscribe()
    await adminClient.dispose()
  })

  it('publishes over the WebSocket too, with the same rules as over HTTP', async () => {
    const serviceClient = connectClient(server.wsUrl, service)
    const published = subscribe(serviceClient, RaiseParkingAlertDocument, {
      input: { lotId: 'P1', level: 'INFO', message: 'over the socket' },
    })
    const [result] = await published.waitForCount(1)
    expect(result?.raiseParkingAlert).toMatchObject({
      message: 'over the socket',
      automatic: false,
    })
    const refused = subscribe(client, RaiseParkingAlertDocument, {
      input: { lotId: 'P1', level: 'INFO', message: 'operator may not publish' },
    })
    await refused.waitForEnd()
    expect(refused.results[0]?.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN')
    await serviceClient.dispose()
  })

  it('refuses unknown lots and bad arguments with a clear code', async () => {
    const unknown = await execute(server.url, service, LotDocument, { lotId: 'nope' })
    expect(unknown.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND')
    const badSpace = await execute(server.url, service, SetSpaceStateDocument, {
      input: { lotId: 'P1', spaceNumber: 'Z-99', state: 'FREE' },
    })
    expect(badSpace.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND')
    expect(badSpace.errors?.[0]?.message).toContain('space "Z-99" in lot "P1"')
    const spaceOfUnknownLot = await execute(server.url, service, SetSpaceStateDocument, {
      input: { lotId: 'nope', spaceNumber: 'A-1', state: 'FREE' },
    })
    expect(spaceOfUnknownLot.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND')
    expect(spaceOfUnknownLot.errors?.[0]?.message).toContain('lot "nope"')
    expect(spaceOfUnknownLot.errors?.[0]?.message).not.toContain('space')
    const badId = await execute(server.url, service, LotDocument, { lotId: 'lot:with:colons' })
    expect(badId.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT')
    const sub = subscribe(client, ParkingUpdatedDocument, { lotId: 'P1', after: 'garbage' })
    await sub.waitForEnd()
    expect(JSON.stringify(sub.results)).toContain('BAD_CURSOR')
  })
})
