import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AppointmentChangedDocument,
  type AppointmentStatus,
  BusinessDocument,
  BusinessStatsDocument,
  BusinessStatsUpdatedDocument,
  PublishAppointmentDocument,
  type PublishAppointmentInput,
  UpsertBusinessDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
let staff: string
let client: Client

/** A cursor at the start of `channel`: nothing published after subscribing can be missed. */

/** Noon UTC, `days` from today. */
function noon(days: number): string {
  const now = new Date()
  return new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + days, 12),
  ).toISOString()
}
const isToday = (iso: string) => iso.slice(0, 10) === new Date().toISOString().slice(0, 10)

const publish = (input: PublishAppointmentInput, token = service) =>
  mustExecute(server.url, token, PublishAppointmentDocument, { input })
const codeOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.[0]?.extensions?.['code']

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  staff = await tokenFor({ sub: 'desk-1', role: 'operator', scopes: ['business:B1'] })
  client = connectClient(server.wsUrl, staff)
  await mustExecute(server.url, service, UpsertBusinessDocument, {
    input: { businessId: 'B1', name: 'Barber' },
  })
})

afterAll(async () => {
  await client?.dispose()
  await server?.stop()
})

describe('appointments', () => {
  it('streams every appointment change over graphql-ws, typed, with cursors to resume', async () => {
    const channel = 'business:B1:appointments'
    const sub = subscribe(client, AppointmentChangedDocument, {
      businessId: 'B1',
      after: fromStart(channel),
    })
    const base = { businessId: 'B1' }
    await publish({
      ...base,
      appointmentId: 'a1',
      change: 'CREATED',
      clientId: 'c-1',
      clientName: 'Ana',
      service: 'Haircut',
      startsAt: noon(1),
    })
    await publish({ ...base, appointmentId: 'a1', change: 'UPDATED', service: 'Shave', notes: 'x' })
    await publish({
      ...base,
      appointmentId: 'a2',
      change: 'CREATED',
      clientName: 'Bo',
      startsAt: noon(2),
    })
    await publish({ ...base, appointmentId: 'a1', change: 'COMPLETED' })
    await publish({ ...base, appointmentId: 'a2', change: 'CANCELLED', notes: 'sick' })
    const events = (await sub.waitForCount(5)).map((d) => d.appointmentChanged)
    sub.unsubscribe()

    expect(events.map((e) => [e.seq, e.appointmentId, e.change, e.status])).toEqual([
      [1, 'a1', 'CREATED', 'SCHEDULED'],
      [2, 'a1', 'UPDATED', 'SCHEDULED'],
      [3, 'a2', 'CREATED', 'SCHEDULED'],
      [4, 'a1', 'COMPLETED', 'COMPLETED'],
      [5, 'a2', 'CANCELLED', 'CANCELLED'],
    ])
    for (const event of events) {
      expect(event).toMatchObject({ __typename: 'AppointmentChanged', channel, businessId: 'B1' })
      expect(event.cursor).toMatch(/^c1\./)
    }
    // An update keeps what it does not mention.
    expect(events[1]).toMatchObject({
      clientId: 'c-1',
      clientName: 'Ana',
      service: 'Shave',
      notes: 'x',
      startsAt: noon(1),
    })
    expect(events[4]).toMatchObject({ clientName: 'Bo', service: null, notes: 'sick' })

    const resumed = subscribe(client, AppointmentChangedDocument, {
      businessId: 'B1',
      after: events[2]?.cursor ?? null,
    })
    const replayed = (await resumed.waitForCount(2)).map((d) => d.appointmentChanged)
    resumed.unsubscribe()
    expect(replayed.map((e) => [e.seq, e.cursor])).toEqual(
      events.slice(3).map((e) => [e.seq, e.cursor]),
    )
  })

  it('answers stats from the projection, in the query and the stream, as counted here', async () => {
    await mustExecute(server.url, service, UpsertBusinessDocument, {
      input: { businessId: 'B2', name: 'Dentist' },
    })
    const admin = await tokenFor({ sub: 'a', role: 'admin' })
    const adminClient = connectClient(server.wsUrl, admin)
    const sub = subscribe(adminClient, BusinessStatsUpdatedDocument, { businessId: 'B2' })
    const [first] = await sub.waitForCount(1)
    expect(first?.businessStatsUpdated).toEqual({
      businessId: 'B2',
      total: 0,
      today: 0,
      scheduled: 0,
      completed: 0,
      cancelled: 0,
    })

    const model = new Map<string, { status: AppointmentStatus; startsAt: string }>()
    const plan: Array<[string, 'CREATED' | 'UPDATED' | 'COMPLETED' | 'CANCELLED', string?]> = [
      ['y1', 'CREATED', noon(-1)],
      ['t1', 'CREATED', noon(0)],
      ['t2', 'CREATED', noon(0)],
      ['t3', 'CREATED', noon(3)],
      ['t3', 'UPDATED', noon(0)], // rescheduled to today
      ['n1', 'CREATED', noon(1)],
      ['n2', 'CREATED', noon(2)],
      ['n3', 'CREATED', noon(5)],
      ['y1', 'COMPLETED'],
      ['t2', 'CANCELLED'],
      ['n3', 'CANCELLED'],
      ['t1', 'COMPLETED'],
    ]
    for (const [appointmentId, change, startsAt] of plan) {
      await publish({
        businessId: 'B2',
        appointmentId,
        change,
        clientName: `client of ${appointmentId}`,
        ...(startsAt ? { startsAt } : {}),
      })
      const previous = model.get(appointmentId)
      model.set(appointmentId, {
        status: change === 'COMPLETED' || change === 'CANCELLED' ? change : 'SCHEDULED',
        startsAt: startsAt ?? previous?.startsAt ?? '',
      })
    }
    const all = [...model.values()]
    const count = (status: AppointmentStatus) => all.filter((a) => a.status === status).length
    const expected = {
      businessId: 'B2',
      total: all.length,
      today: all.filter((a) => a.status !== 'CANCELLED' && isToday(a.startsAt)).length,
      scheduled: count('SCHEDULED'),
      completed: count('COMPLETED'),
      cancelled: count('CANCELLED'),
    }
    expect(expected).toMatchObject({ total: 7, today: 2, completed: 2, cancelled: 2 })

    const { businessStats } = await mustExecute(server.url, admin, BusinessStatsDocument, {
      businessId: 'B2',
    })
    expect(businessStats).toEqual(expected)
    await expect
      .poll(() => sub.data.at(-1)?.businessStatsUpdated, { timeout: 5_000 })
      .toEqual(expected)
    expect(sub.data.length).toBeLessThan(plan.length) // coalesced
    sub.unsubscribe()
    await adminClient.dispose()

    const { business } = await mustExecute(server.url, admin, BusinessDocument, {
      businessId: 'B2',
    })
    expect(business.name).toBe('Dentist')
    const { businessId: _, ...counts } = expected
    expect(business.stats).toEqual(counts)
    const now = Date.now()
    const upcoming = [...model]
      .filter(([, a]) => a.status === 'SCHEDULED' && Date.parse(a.startsAt) >= now)
      .sort(([, a], [, b]) => a.startsAt.localeCompare(b.startsAt))
      .map(([id]) => id)
    expect(business.upcomingAppointments.map((a) => a.id)).toEqual(upcoming)
    expect(upcoming).toEqual(expect.arrayContaining(['n1', 'n2']))
  })

  it('validates transitions and refuses unknown ids with clear codes', async () => {
    const run = (input: PublishAppointmentInput) =>
      execute(server.url, service, PublishAppointmentDocument, { input })
    const base = { businessId: 'B1' }
    const unknown = await run({ ...base, appointmentId: 'nope', change: 'UPDATED' })
    expect(codeOf(unknown)).toBe('NOT_FOUND')
    const duplicate = await run({
      ...base,
      appointmentId: 'a1',
      change: 'CREATED',
      clientName: 'Ana',
      startsAt: noon(1),
    })
    expect(duplicate.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.appointmentId',
    })
    const reopen = await run({ ...base, appointmentId: 'a2', change: 'COMPLETED' })
    expect(reopen.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.change',
    })
    expect(reopen.errors?.[0]?.message).toContain('CANCELLED')
    const noStart = await run({ ...base, appointmentId: 'a9', change: 'CREATED', clientName: 'C' })
    expect(noStart.errors?.[0]?.extensions).toMatchObject({ field: 'input.startsAt' })
    const badDate = await run({ ...base, appointmentId: 'a9', change: 'UPDATED', startsAt: 'soon' })
    expect(codeOf(badDate)).toBe('BAD_USER_INPUT')
    const noBusiness = await run({
      businessId: 'nowhere',
      appointmentId: 'a1',
      change: 'CREATED',
      clientName: 'Ana',
      startsAt: noon(1),
    })
    expect(codeOf(noBusiness)).toBe('NOT_FOUND')
    const badId = await run({ ...base, appointmentId: 'a:1', change: 'COMPLETED' })
    expect(badId.errors?.[0]?.extensions).toMatchObject({ field: 'input.appointmentId' })
    const query = await execute(server.url, service, BusinessDocument, { businessId: 'nowhere' })
    expect(codeOf(query)).toBe('NOT_FOUND')
    const sub = subscribe(client, BusinessStatsUpdatedDocument, { businessId: 'B1:x' })
    await sub.waitForEnd()
    expect(JSON.stringify(sub.results)).toContain('BAD_USER_INPUT')
  })

  it('refuses other scopes (subscriptions, queries) and non-service publishers', async () => {
    const outsider = await tokenFor({ sub: 'desk-9', role: 'operator', scopes: ['business:B9'] })
    const outsiderClient = connectClient(server.wsUrl, outsider)
    const events = subscribe(outsiderClient, AppointmentChangedDocument, { businessId: 'B1' })
    const stats = subscribe(outsiderClient, BusinessStatsUpdatedDocument, { businessId: 'B1' })
    await Promise.all([events.waitForEnd(), stats.waitForEnd()])
    // A subscriber allowed in sees the next change, so the refused ones would have too.
    const watcher = subscribe(client, AppointmentChangedDocument, {
      businessId: 'B1',
      after: fromStart('business:B1:appointments'),
    })
    await publish({
      businessId: 'B1',
      appointmentId: 'a3',
      change: 'CREATED',
      clientName: 'Cy',
      startsAt: noon(1),
    })
    await watcher.waitForCount(6)
    watcher.unsubscribe()
    for (const refused of [events, stats]) {
      expect(refused.data).toEqual([])
      expect(JSON.stringify(refused.results)).toContain('FORBIDDEN')
    }
    await outsiderClient.dispose()

    for (const businessId of ['B1', 'nowhere']) {
      // Unknown businesses are refused the same way, so refusals reveal nothing.
      const query = await execute(server.url, outsider, BusinessStatsDocument, { businessId })
      expect(codeOf(query)).toBe('FORBIDDEN')
    }
    const asStaff = await execute(server.url, staff, PublishAppointmentDocument, {
      input: { businessId: 'B1', appointmentId: 'a3', change: 'CANCELLED' },
    })
    expect(codeOf(asStaff)).toBe('FORBIDDEN')
    const upsert = await execute(server.url, staff, UpsertBusinessDocument, {
      input: { businessId: 'B1', name: 'Mine now' },
    })
    expect(codeOf(upsert)).toBe('FORBIDDEN')
    const { business } = await mustExecute(server.url, staff, BusinessDocument, {
      businessId: 'B1',
    })
    expect(business).toMatchObject({ name: 'Barber', stats: { total: 3, cancelled: 1 } })
  })
})
