import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ChatHistoryDocument,
  ChatMessageDocument,
  CreateReservationDocument,
  type CreateReservationInput,
  ReservationCreatedDocument,
  ReservationUpdatedDocument,
  RestaurantDocument,
  SendChatMessageDocument,
  SetReservationStatusDocument,
  type SetReservationStatusInput,
  SetTableStatusDocument,
  TableUpdatedDocument,
  UpsertRestaurantDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
let staff: string
let guest: string
let staffClient: Client
let guestClient: Client

/** A cursor at the start of `channel`: nothing published after subscribing can be missed. */

/** `hour`:00 UTC, `days` from today. */
function at(days: number, hour: number): string {
  const now = new Date()
  return new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + days, hour),
  ).toISOString()
}

type Errors = { errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }
const errorOf = (result: Errors) => result.errors?.[0]?.extensions
const reserve = (input: CreateReservationInput) =>
  execute(server.url, service, CreateReservationDocument, { input })
const setStatus = (input: SetReservationStatusInput) =>
  execute(server.url, service, SetReservationStatusDocument, { input })

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  staff = await tokenFor({ sub: 'host-1', role: 'operator', scopes: ['restaurant:R1'] })
  guest = await tokenFor({ sub: 'client-1', role: 'client' })
  staffClient = connectClient(server.wsUrl, staff)
  guestClient = connectClient(server.wsUrl, guest)
  await mustExecute(server.url, service, UpsertRestaurantDocument, {
    input: {
      restaurantId: 'R1',
      name: 'Trattoria',
      tables: [
        { tableId: 'T1', capacity: 2 },
        { tableId: 'T2', capacity: 4 },
        { tableId: 'T3', capacity: 6 },
      ],
    },
  })
})

afterAll(async () => {
  await staffClient?.dispose()
  await guestClient?.dispose()
  await server?.stop()
})

describe('reservations', () => {
  it('streams created reservations alone, and with status changes as one typed union', async () => {
    const channel = 'restaurant:R1:reservations'
    const after = fromStart(channel)
    const created = subscribe(staffClient, ReservationCreatedDocument, {
      restaurantId: 'R1',
      after,
    })
    const updated = subscribe(staffClient, ReservationUpdatedDocument, {
      restaurantId: 'R1',
      after,
    })
    const base = { restaurantId: 'R1' }
    await reserve({
      ...base,
      reservationId: 'r1',
      clientName: 'Ana',
      partySize: 3,
      date: at(0, 19),
    })
    await setStatus({ ...base, reservationId: 'r1', status: 'CONFIRMED', tableId: 'T2' })
    await reserve({ ...base, reservationId: 'r2', clientName: 'Bo', partySize: 2, date: at(0, 20) })
    await setStatus({ ...base, reservationId: 'r1', status: 'SEATED' })
    await setStatus({ ...base, reservationId: 'r2', status: 'CANCELLED' })

    const all = (await updated.waitForCount(5)).map((d) => d.reservationUpdated)
    const news = (await created.waitForCount(2)).map((d) => d.reservationCreated)
    expect(
      all.map((e) => [
        e.__typename,
        e.seq,
        e.reservationId,
        e.__typename === 'ReservationStatusChanged' ? e.previousStatus : null,
        e.status,
      ]),
    ).toEqual([
      ['ReservationCreated', 1, 'r1', null, 'PENDING'],
      ['ReservationStatusChanged', 2, 'r1', 'PENDING', 'CONFIRMED'],
      ['ReservationCreated', 3, 'r2', null, 'PENDING'],
      ['ReservationStatusChanged', 4, 'r1', 'CONFIRMED', 'SEATED'],
      ['ReservationStatusChanged', 5, 'r2', 'PENDING', 'CANCELLED'],
    ])
    for (const event of all) {
      expect(event.channel).toBe(channel)
      expect(event.cursor).toMatch(/^c1\./)
    }
    expect(all[3]).toMatchObject({ clientName: 'Ana', partySize: 3, tableId: 'T2' })
    expect(news.map((e) => [e.__typename, e.seq, e.reservationId, e.status])).toEqual([
      ['ReservationCreated', 1, 'r1', 'PENDING'],
      ['ReservationCreated', 3, 'r2', 'PENDING'],
    ])
    expect(news[1]).toMatchObject({ clientName: 'Bo', partySize: 2, date: at(0, 20) })
    expect(news[1]?.cursor).toBe(all[2]?.cursor)
    // No more created events followed, though two status changes did.
    expect(created.data).toHaveLength(2)
    created.unsubscribe()
    updated.unsubscribe()

    await reserve({ ...base, reservationId: 'r3', clientName: 'Cy', partySize: 6, date: at(1, 19) })
    const { restaurant } = await mustExecute(server.url, staff, RestaurantDocument, base)
    expect(restaurant.tables.map((t) => [t.id, t.capacity])).toEqual([
      ['T1', 2],
      ['T2', 4],
      ['T3', 6],
    ])
    expect(restaurant.reservationsToday.map((r) => [r.id, r.status, r.tableId])).toEqual([
      ['r1', 'SEATED', 'T2'],
      ['r2', 'CANCELLED', null],
    ])
  })

  it('rejects invalid transitions and unknown ids with codes naming the field', async () => {
    const base = { restaurantId: 'R1' }
    const seatedToCancelled = await setStatus({ ...base, reservationId: 'r1', status: 'CANCELLED' })
    expect(errorOf(seatedToCancelled)).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.status',
    })
    expect(seatedToCancelled.errors?.[0]?.message).toContain('from SEATED to CANCELLED')
    const skip = await setStatus({ ...base, reservationId: 'r3', status: 'SEATED' })
    expect(errorOf(skip)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.status' })
    const unknown = await setStatus({ ...base, reservationId: 'nope', status: 'CONFIRMED' })
    expect(errorOf(unknown)?.['code']).toBe('NOT_FOUND')
    const duplicate = await reserve({
      ...base,
      reservationId: 'r1',
      clientName: 'Ana',
      partySize: 2,
      date: at(0, 19),
    })
    expect(errorOf(duplicate)).toMatchObject({ field: 'input.reservationId' })
    const tooBig = await reserve({
      ...base,
      clientName: 'Dan',
      partySize: 5,
      tableId: 'T1',
      date: at(0, 19),
    })
    expect(errorOf(tooBig)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.partySize' })
    const noTable = await reserve({
      ...base,
      clientName: 'Dan',
      partySize: 2,
      tableId: 'T9',
      date: at(0, 19),
    })
    expect(errorOf(noTable)?.['code']).toBe('NOT_FOUND')
    const noSeats = await reserve({ ...base, clientName: 'Dan', partySize: 0, date: at(0, 19) })
    expect(errorOf(noSeats)).toMatchObject({ field: 'input.partySize' })
    const noRestaurant = await reserve({
      restaurantId: 'R404',
      clientName: 'Dan',
      partySize: 2,
      date: at(0, 19),
    })
    expect(errorOf(noRestaurant)?.['code']).toBe('NOT_FOUND')
    const badTable = await execute(server.url, service, SetTableStatusDocument, {
      input: { ...base, tableId: 'T9', status: 'OCCUPIED' },
    })
    expect(errorOf(badTable)?.['code']).toBe('NOT_FOUND')
    const query = await execute(server.url, service, RestaurantDocument, { restaurantId: 'R404' })
    expect(errorOf(query)?.['code']).toBe('NOT_FOUND')
  })

  it('streams table status changes with the previous status and capacity', async () => {
    const channel = 'restaurant:R1:tables'
    const sub = subscribe(staffClient, TableUpdatedDocument, {
      restaurantId: 'R1',
      after: fromStart(channel),
    })
    const set = (tableId: string, status: 'RESERVED' | 'OCCUPIED' | 'AVAILABLE') =>
      mustExecute(server.url, service, SetTableStatusDocument, {
        input: { restaurantId: 'R1', tableId, status },
      })
    const reply = await set('T1', 'RESERVED')
    expect(reply.setTableStatus).toMatchObject({ seq: 1, previousStatus: 'AVAILABLE' })
    await set('T1', 'OCCUPIED')
    await set('T3', 'OCCUPIED')
    const events = (await sub.waitForCount(3)).map((d) => d.tableUpdated)
    sub.unsubscribe()
    expect(events.map((e) => [e.seq, e.tableId, e.capacity, e.previousStatus, e.status])).toEqual([
      [1, 'T1', 2, 'AVAILABLE', 'RESERVED'],
      [2, 'T1', 2, 'RESERVED', 'OCCUPIED'],
      [3, 'T3', 6, 'AVAILABLE', 'OCCUPIED'],
    ])
    for (const event of events) {
      expect(event).toMatchObject({ __typename: 'TableUpdated', channel, restaurantId: 'R1' })
      expect(event.cursor).toMatch(/^c1\./)
    }
    const { restaurant } = await mustExecute(server.url, staff, RestaurantDocument, {
      restaurantId: 'R1',
    })
    expect(restaurant.tables.map((t) => t.status)).toEqual(['OCCUPIED', 'AVAILABLE', 'OCCUPIED'])
  })

  it('carries a client-restaurant chat both ways, senders taken from the token', async () => {
    const vars = { restaurantId: 'R1', clientId: 'client-1' }
    const after = fromStart('restaurant:R1:chat:client-1')
    const asGuest = subscribe(guestClient, ChatMessageDocument, { ...vars, after })
    const asStaff = subscribe(staffClient, ChatMessageDocument, { ...vars, after })
    const send = (token: string, body: string) =>
      mustExecute(server.url, token, SendChatMessageDocument, { input: { ...vars, body } })
    await send(guest, 'Table for two at 8?')
    await send(staff, 'Yes, see you at 8.')
    await send(service, 'Reminder: reservation today.')
    const expected = [
      ['client-1', 'client', 'Table for two at 8?'],
      ['host-1', 'operator', 'Yes, see you at 8.'],
      ['backend-1', 'service', 'Reminder: reservation today.'],
    ]
    for (const sub of [asGuest, asStaff]) {
      const messages = (await sub.waitForCount(3)).map((d) => d.chatMessage)
      sub.unsubscribe()
      expect(messages.map((m) => [m.fromUserId, m.fromRole, m.body])).toEqual(expected)
      expect(messages.map((m) => m.seq)).toEqual([1, 2, 3])
      for (const message of messages) {
        expect(message).toMatchObject({ __typename: 'RestaurantChatMessage', ...vars })
        expect(message.cursor).toMatch(/^c1\./)
      }
    }

    const { chatHistory } = await mustExecute(server.url, guest, ChatHistoryDocument, {
      ...vars,
      last: 2,
    })
    expect(chatHistory.map((m) => [m.seq, m.body])).toEqual([
      [2, 'Yes, see you at 8.'],
      [3, 'Reminder: reservation today.'],
    ])
    // History cursors resume the live stream right after the message.
    const resumed = subscribe(guestClient, ChatMessageDocument, {
      ...vars,
      after: chatHistory[0]?.cursor ?? null,
    })
    const [next] = await resumed.waitForCount(1)
    resumed.unsubscribe()
    expect(next?.chatMessage).toMatchObject({ seq: 3, fromUserId: 'backend-1' })

    const empty = await execute(server.url, guest, SendChatMessageDocument, {
      input: { ...vars, body: '   ' },
    })
    expect(errorOf(empty)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.body' })
    const long = await execute(server.url, guest, SendChatMessageDocument, {
      input: { ...vars, body: 'x'.repeat(2_001) },
    })
    expect(errorOf(long)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.body' })
  })

  it("refuses another client's chat, other scopes and non-service publishers", async () => {
    const other = await tokenFor({ sub: 'client-2', role: 'client' })
    const otherStaff = await tokenFor({
      sub: 'host-9',
      role: 'operator',
      scopes: ['restaurant:R9'],
    })
    const chat = { restaurantId: 'R1', clientId: 'client-1' }
    const otherClient = connectClient(server.wsUrl, other)
    const staffElsewhere = connectClient(server.wsUrl, otherStaff)
    const refused = [
      subscribe(otherClient, ChatMessageDocument, chat),
      subscribe(staffElsewhere, ChatMessageDocument, chat),
      subscribe(staffElsewhere, ReservationCreatedDocument, { restaurantId: 'R1' }),
      subscribe(staffElsewhere, ReservationUpdatedDocument, { restaurantId: 'R1' }),
      subscribe(staffElsewhere, TableUpdatedDocument, { restaurantId: 'R1' }),
    ]
    await Promise.all(refused.map((sub) => sub.waitForEnd()))
    // An allowed subscriber sees the next events, so the refused ones would have too.
    const watcher = subscribe(staffClient, ChatMessageDocument, {
      ...chat,
      after: fromStart('restaurant:R1:chat:client-1'),
    })
    await mustExecute(server.url, guest, SendChatMessageDocument, {
      input: { ...chat, body: 'Still there?' },
    })
    await reserve({ restaurantId: 'R1', clientName: 'Eve', partySize: 2, date: at(2, 19) })
    await mustExecute(server.url, service, SetTableStatusDocument, {
      input: { restaurantId: 'R1', tableId: 'T2', status: 'OUT_OF_SERVICE' },
    })
    await watcher.waitForCount(4)
    watcher.unsubscribe()
    for (const sub of refused) {
      expect(sub.data).toEqual([])
      expect(JSON.stringify(sub.results)).toContain('FORBIDDEN')
    }
    await otherClient.dispose()
    await staffElsewhere.dispose()

    const spoof = await execute(server.url, other, SendChatMessageDocument, {
      input: { ...chat, body: 'I am client-1' },
    })
    expect(errorOf(spoof)?.['code']).toBe('FORBIDDEN')
    const history = await execute(server.url, other, ChatHistoryDocument, chat)
    expect(errorOf(history)?.['code']).toBe('FORBIDDEN')
    // Unknown restaurants are refused the same way, so refusals reveal nothing.
    for (const restaurantId of ['R1', 'R404']) {
      const query = await execute(server.url, otherStaff, RestaurantDocument, { restaurantId })
      expect(errorOf(query)?.['code']).toBe('FORBIDDEN')
    }
    for (const token of [staff, guest]) {
      const asUser = await execute(server.url, token, CreateReservationDocument, {
        input: { restaurantId: 'R1', clientName: 'Me', partySize: 2, date: at(0, 21) },
      })
      expect(errorOf(asUser)?.['code']).toBe('FORBIDDEN')
      const table = await execute(server.url, token, SetTableStatusDocument, {
        input: { restaurantId: 'R1', tableId: 'T1', status: 'AVAILABLE' },
      })
      expect(errorOf(table)?.['code']).toBe('FORBIDDEN')
      const confirm = await execute(server.url, token, SetReservationStatusDocument, {
        input: { restaurantId: 'R1', reservationId: 'r3', status: 'CONFIRMED' },
      })
      expect(errorOf(confirm)?.['code']).toBe('FORBIDDEN')
    }
  })
})
