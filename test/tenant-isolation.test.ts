import type { TypedDocumentNode } from '@graphql-typed-document-node/core'
import fc from 'fast-check'
import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type ChannelRef, channelName, ROLES, type Role } from '../src/events/channels.js'
import {
  AdminActivityFeedDocument,
  AppointmentChangedDocument,
  BusinessStatsUpdatedDocument,
  ChatMessageDocument,
  DeliveryUpdatedDocument,
  InventoryAlertDocument,
  NotificationDocument,
  OrderUpdatedDocument,
  ParkingUpdatedDocument,
  RecentEventsDocument,
  ReservationCreatedDocument,
  ReservationUpdatedDocument,
  RoomMessageDocument,
  StatsUpdatedDocument,
  TableUpdatedDocument,
  UpsertBusinessDocument,
  UpsertLotDocument,
  UpsertRestaurantDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import {
  createRecordingPublisher,
  type Logged,
  markOf,
  type OrderParties,
  type RecordingPublisher,
} from './utils/recording-publisher.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { tokenFor } from './utils/tokens.js'
import { connectClient, type Subscription, subscribe } from './utils/ws-client.js'

/**
 * Every user tries every subscription on every resource of a small fixture (lots, businesses,
 * restaurants and their chats, a marketplace, notifications, rooms); then a seeded random run
 * of publishes goes over all channels. An oracle written here from the design's security model
 * (not from src/auth) says who may read what; the test checks the refusals, and that each
 * allowed subscription streams exactly the events of its channels, in order.
 */

/** Seed of the random publish sequence: the same run every time. */
const SEED = 20_251_123
const RANDOM_PUBLISHES = 120

// ---- The fixture -------------------------------------------------------------------------

const LOTS = ['L1', 'L2'] as const
const SPACES = Array.from({ length: 10 }, (_, i) => `A-${i + 1}`)
/** The only spaces that change: three of ten, far from the automatic occupancy alert. */
const FEW_SPACES = SPACES.slice(0, 3)
const BUSINESSES = ['B1', 'B2'] as const
const RESTAURANTS = ['R1', 'R2'] as const
const TABLES = ['T1', 'T2'] as const
const CHAT_CLIENTS = ['c1', 'c2'] as const
const SELLERS = ['S1', 'S2'] as const
const COURIERS = ['d1', 'd2'] as const
const ROOMS = ['lobby', 'ops'] as const

/** Parties stay fixed for the whole run (couriers are assigned during setup). */
const ORDERS: Readonly<Record<string, OrderParties>> = {
  O1: { seller: 'S1', buyer: 'c1', courier: 'd1' },
  O2: { seller: 'S2', buyer: 'c2', courier: 'd2' },
  O3: { seller: 'S2', buyer: 'c1', courier: null },
}

interface User {
  readonly sub: string
  readonly role: Role
  readonly scopes: readonly string[]
}

const USERS: readonly User[] = [
  { sub: 'root', role: 'admin', scopes: [] },
  { sub: 'backend-reader', role: 'service', scopes: [] },
  { sub: 'op-lot1', role: 'operator', scopes: ['lot:L1', 'business:B1'] },
  { sub: 'op-lots', role: 'operator', scopes: ['lot:L1', 'lot:L2', 'room:ops'] },
  { sub: 'op-bare', role: 'operator', scopes: [] },
  { sub: 'staff-r1', role: 'operator', scopes: ['restaurant:R1'] },
  { sub: 'staff-r2', role: 'operator', scopes: ['restaurant:R2', 'business:B2'] },
  { sub: 'seller-1', role: 'seller', scopes: ['seller:S1'] },
  { sub: 'seller-2', role: 'seller', scopes: ['seller:S2', 'room:lobby'] },
  {
    // Scopes that look like they might cover something, and cover nothing.
    sub: 'seller-near',
    role: 'seller',
    scopes: [
      'seller:s1',
      'seller:S1:orders',
      'seller:*',
      'lot:S1',
      'order:',
      'business:L1',
      'restaurant:R1:chat:c1',
      'room:lobby:x',
      'courier:d1',
      'user:c1',
    ],
  },
  { sub: 'c1', role: 'client', scopes: [] },
  { sub: 'c2', role: 'client', scopes: ['room:lobby'] },
  { sub: 'c3', role: 'client', scopes: ['order:O2'] },
  // A subject equal to a lot id, and bare ids as scopes: neither is a scope of that lot.
  { sub: 'L1', role: 'client', scopes: ['R1', 'S1', 'O1', 'B1'] },
  { sub: 'd1', role: 'delivery', scopes: [] },
  { sub: 'd2', role: 'delivery', scopes: ['business:B1'] },
  { sub: 'd3', role: 'delivery', scopes: ['lot:L2'] },
]

// ---- The oracle ---------------------------------------------------------------------------

/** What a subscription is about, in the design's words. */
type Resource =
  | { readonly kind: 'lot' | 'business' | 'restaurant' | 'seller' | 'room'; readonly id: string }
  | { readonly kind: 'chat'; readonly restaurant: string; readonly client: string }
  | { readonly kind: 'order' | 'courier' | 'user'; readonly id: string }
  | { readonly kind: 'role'; readonly role: Role }
  | { readonly kind: 'everyone' }
  | { readonly kind: 'adminApi' }

/**
 * The security model: `admin` sees everything; `service` reads everything (the admin API is
 * for `admin` only); anyone else reads a channel only when a scope (`lot:42`, …), their own
 * `sub`, their role or their own orders (as seller, buyer or courier) cover it.
 */
function mayRead(user: User, resource: Resource): boolean {
  if (user.role === 'admin') return true
  if (resource.kind === 'adminApi') return false
  if (user.role === 'service') return true
  const holds = (scope: string) => user.scopes.includes(scope)
  switch (resource.kind) {
    case 'lot':
    case 'business':
    case 'restaurant':
    case 'seller':
    case 'room':
      return holds(`${resource.kind}:${resource.id}`)
    case 'chat':
      return holds(`restaurant:${resource.restaurant}`) || user.sub === resource.client
    case 'order': {
      const order = ORDERS[resource.id]
      if (holds(`order:${resource.id}`)) return true
      if (!order) return false
      return (
        holds(`seller:${order.seller}`) || user.sub === order.buyer || user.sub === order.courier
      )
    }
    case 'courier':
    case 'user':
      return user.sub === resource.id
    case 'role':
      return user.role === resource.role
    case 'everyone':
      return true
  }
}

/** Whether some subscription lets `user` ask for `resource` at all (notifications: only their own). */
function canAskFor(user: User, resource: Resource): boolean {
  if (resource.kind === 'user') return resource.id === user.sub
  if (resource.kind === 'role') return resource.role === user.role
  return true
}

// ---- Channels ------------------------------------------------------------------------------

/** Every channel of the fixture, by name, with what it is about. */
const RESOURCE_OF = new Map<string, Resource>()
function channel(ref: ChannelRef, resource: Resource): string {
  const name = channelName(ref)
  RESOURCE_OF.set(name, resource)
  return name
}
const lot = (id: string): Resource => ({ kind: 'lot', id })
const business = (id: string): Resource => ({ kind: 'business', id })
const restaurant = (id: string): Resource => ({ kind: 'restaurant', id })
const seller = (id: string): Resource => ({ kind: 'seller', id })

// ---- Publishing ---------------------------------------------------------------------------

let server: TestServer
let publish: RecordingPublisher
const ORDER_IDS = Object.keys(ORDERS)
const DELIVERED_ORDERS = ORDER_IDS.filter((orderId) => ORDERS[orderId]?.courier)

const pickOf = <T>(items: readonly T[], pick: number): T => {
  const item = items[pick % items.length]
  if (item === undefined) throw new Error('empty choice')
  return item
}

/** The seeded random publishes, one of each kind of event the schema offers, on any resource. */
const RANDOM_ACTIONS: ReadonlyArray<(pick: number) => Promise<void>> = [
  (p) => publish.alert(pickOf(LOTS, p)),
  (p) => publish.ticket(pickOf(LOTS, p)),
  (p) => publish.payment(pickOf(LOTS, p)),
  (p) => publish.space(pickOf(LOTS, p), pickOf(FEW_SPACES, p >> 1)),
  (p) => publish.appointment(pickOf(BUSINESSES, p), p >> 1),
  (p) => publish.reservation(pickOf(RESTAURANTS, p)),
  (p) => publish.reservationStatus(pickOf(RESTAURANTS, p), p >> 1),
  (p) => publish.table(pickOf(RESTAURANTS, p), pickOf(TABLES, p >> 1)),
  (p) => publish.chat(pickOf(RESTAURANTS, p), pickOf(CHAT_CLIENTS, p >> 1)),
  (p) => publish.order(pickOf(ORDER_IDS, p)),
  (p) => publish.delivery(pickOf(DELIVERED_ORDERS, p)),
  (p) => publish.inventory(pickOf(SELLERS, p)),
  (p) => publish.notify({ userId: pickOf(USERS, p).sub }),
  (p) => publish.notify({ role: pickOf(ROLES, p) }),
  () => publish.notify({ everyone: true }),
  (p) => publish.room(pickOf(ROOMS, p)),
]

/** One more event on every channel of the fixture, so every allowed subscription streams. */
async function publishOnEveryChannel() {
  for (const lotId of LOTS) await publish.alert(lotId)
  for (const businessId of BUSINESSES) await publish.appointment(businessId, 1)
  for (const restaurantId of RESTAURANTS) {
    await publish.reservation(restaurantId)
    for (const tableId of TABLES) await publish.table(restaurantId, tableId)
    for (const clientId of CHAT_CLIENTS) await publish.chat(restaurantId, clientId)
  }
  for (const orderId of ORDER_IDS) await publish.order(orderId)
  for (const orderId of DELIVERED_ORDERS) await publish.delivery(orderId)
  for (const sellerId of SELLERS) await publish.inventory(sellerId)
  for (const user of USERS) await publish.notify({ userId: user.sub })
  for (const role of ROLES) await publish.notify({ role })
  await publish.notify({ everyone: true })
  for (const room of ROOMS) await publish.room(room)
}

// ---- Subscriptions ------------------------------------------------------------------------

type AnyDocument = TypedDocumentNode<Record<string, unknown>, Record<string, unknown>>

/** One subscription one user attempts. */
interface Probe {
  readonly user: User
  /** e.g. `parkingUpdated(lotId: L1)`, for reports. */
  readonly label: string
  readonly field: string
  readonly document: AnyDocument
  readonly variables: Record<string, unknown>
  /** What the subscription reads; the oracle must allow every one. */
  readonly resources: readonly Resource[]
  /** Its channels; empty for snapshot streams (stats, admin activity), checked for access only. */
  readonly channels: readonly string[]
  /** The event types it delivers, when the document has no `__typename` or it filters. */
  readonly types?: readonly string[]
  readonly allowed: boolean
  /**
   * Subscribed without `after`: the same operation and variables for every user, so a server
   * sharing one execution between viewers it must not would show it. Streams only from when
   * it went live, so only what follows the liveness barrier is certain.
   */
  readonly live?: true
  sub?: Subscription<Record<string, unknown>>
}

/** Every subscription the schema offers, on every resource of the fixture, as `user`. */
function probesFor(user: User): Probe[] {
  const probes: Probe[] = []
  const add = (
    field: string,
    document: unknown,
    args: Record<string, string>,
    resources: readonly Resource[],
    channels: readonly string[] = [],
    types?: readonly string[],
    live?: true,
  ) => {
    const shown = Object.entries(args).map(([name, value]) => `${name}: ${value}`)
    probes.push({
      user,
      label: `${field}(${shown.join(', ')})${live ? ' without after' : ''}`,
      field,
      document: document as AnyDocument,
      // From the start of each channel: everything ever published on it is replayed.
      variables: channels.length > 0 && !live ? { ...args, after: fromStart(...channels) } : args,
      resources,
      channels,
      ...(types ? { types } : {}),
      ...(live ? { live } : {}),
      allowed: resources.every((resource) => mayRead(user, resource)),
    })
  }
  for (const lotId of LOTS) {
    const parking = channel({ kind: 'lotParking', lotId }, lot(lotId))
    add('parkingUpdated', ParkingUpdatedDocument, { lotId }, [lot(lotId)], [parking])
    add('statsUpdated', StatsUpdatedDocument, { lotId }, [lot(lotId)])
  }
  for (const businessId of BUSINESSES) {
    const resource = business(businessId)
    const appointments = channel({ kind: 'businessAppointments', businessId }, resource)
    add(
      'appointmentChanged',
      AppointmentChangedDocument,
      { businessId },
      [resource],
      [appointments],
    )
    add('businessStatsUpdated', BusinessStatsUpdatedDocument, { businessId }, [resource])
  }
  for (const restaurantId of RESTAURANTS) {
    const resource = restaurant(restaurantId)
    const args = { restaurantId }
    const reservations = channel({ kind: 'restaurantReservations', restaurantId }, resource)
    const tables = channel({ kind: 'restaurantTables', restaurantId }, resource)
    add(
      'reservationCreated',
      ReservationCreatedDocument,
      args,
      [resource],
      [reservations],
      ['ReservationCreated'],
    )
    add('reservationUpdated', ReservationUpdatedDocument, args, [resource], [reservations])
    add('tableUpdated', TableUpdatedDocument, args, [resource], [tables])
    for (const clientId of CHAT_CLIENTS) {
      const chat: Resource = { kind: 'chat', restaurant: restaurantId, client: clientId }
      const name = channel({ kind: 'restaurantChat', restaurantId, clientId }, chat)
      add('chatMessage', ChatMessageDocument, { restaurantId, clientId }, [chat], [name])
    }
  }
  for (const orderId of ORDER_IDS) {
    const order: Resource = { kind: 'order', id: orderId }
    const name = channel({ kind: 'order', orderId }, order)
    add('orderUpdated', OrderUpdatedDocument, { orderId }, [order], [name])
  }
  for (const sellerId of SELLERS) {
    const orders = channel({ kind: 'sellerOrders', sellerId }, seller(sellerId))
    const inventory = channel({ kind: 'sellerInventory', sellerId }, seller(sellerId))
    add('orderUpdated', OrderUpdatedDocument, { sellerId }, [seller(sellerId)], [orders])
    add(
      'inventoryAlert',
      InventoryAlertDocument,
      { sellerId },
      [seller(sellerId)],
      [inventory],
      ['InventoryAlert'],
    )
  }
  for (const courierId of COURIERS) {
    const courier: Resource = { kind: 'courier', id: courierId }
    const deliveries = channel({ kind: 'courierDeliveries', courierId }, courier)
    add(
      'deliveryUpdated',
      DeliveryUpdatedDocument,
      { courierId },
      [courier],
      [deliveries],
      ['DeliveryUpdated'],
    )
  }
  const own: Resource[] = [
    { kind: 'user', id: user.sub },
    { kind: 'role', role: user.role },
    { kind: 'everyone' },
  ]
  const notifications = [
    channel({ kind: 'userNotifications', userId: user.sub }, own[0] as Resource),
    channel({ kind: 'roleNotifications', role: user.role }, own[1] as Resource),
    channel({ kind: 'broadcastNotifications' }, own[2] as Resource),
  ]
  add('notification', NotificationDocument, {}, own, notifications, ['NotificationSent'])
  add('notification', NotificationDocument, {}, own, notifications, ['NotificationSent'], true)
  for (const room of ROOMS) {
    const resource: Resource = { kind: 'room', id: room }
    const name = channel({ kind: 'room', room }, resource)
    add('roomMessage', RoomMessageDocument, { room }, [resource], [name], ['RoomMessage'])
  }
  add('adminActivity', AdminActivityFeedDocument, {}, [{ kind: 'adminApi' }])
  return probes
}

/** A delivered event read back from a subscription result. */
function deliveredOf(probe: Probe, data: Record<string, unknown>): Logged {
  const event = (data[probe.field] ?? {}) as Record<string, unknown>
  const type = String(event['__typename'] ?? probe.types?.[0] ?? 'unknown')
  return {
    channel: String(event['channel']),
    seq: Number(event['seq']),
    type,
    mark: markOf(type, event),
  }
}

/** Where the ledger stood once every live subscription was live (see the delivery test). */
let barrier = { index: 0, heads: new Map<string, number>() as ReadonlyMap<string, number> }

/**
 * What `probe` must have received: every logged event of its channels (and types), in order;
 * for a live probe, those published after the barrier.
 */
function expectedFor(probe: Probe): Logged[] {
  return publish.ledger
    .slice(probe.live ? barrier.index : 0)
    .filter(
      (event) =>
        probe.channels.includes(event.channel) &&
        (!probe.types || probe.types.includes(event.type)),
    )
}

/** Whether `event` was published after the barrier, for a live probe (always, for others). */
const certain = (probe: Probe, event: Logged) =>
  !probe.live || event.seq > (barrier.heads.get(event.channel) ?? 0)

const received = (probe: Probe) =>
  (probe.sub?.results ?? [])
    .filter((result) => result.data)
    .map((r) => deliveredOf(probe, r.data ?? {}))

const key = (event: Pick<Logged, 'channel' | 'seq'>) => `${event.channel}#${event.seq}`

/** Whether `probe` ended, with an error result (a refusal) or otherwise. */
const ended = (probe: Probe) =>
  probe.sub === undefined ||
  probe.sub.completed ||
  probe.sub.error !== undefined ||
  probe.sub.results.some((result) => result.errors)

// ---- The test -----------------------------------------------------------------------------

const probes = USERS.flatMap(probesFor)
const clients: Client[] = []

beforeAll(async () => {
  server = await startTestServer()
  // Several backends publish, so no single token's publish rate is the bottleneck.
  const tokens = await Promise.all(
    [1, 2, 3, 4].map((n) => tokenFor({ sub: `publisher-${n}`, role: 'service' })),
  )
  publish = createRecordingPublisher({ url: server.url, tokens, orders: ORDERS })
  const run = <TData, TVariables>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: TVariables,
  ) => mustExecute(server.url, tokens[0], document, variables)
  for (const lotId of LOTS) {
    await run(UpsertLotDocument, {
      input: { lotId, name: `Lot ${lotId}`, spaces: SPACES, alertThreshold: 0.95 },
    })
  }
  for (const businessId of BUSINESSES) {
    await run(UpsertBusinessDocument, { input: { businessId, name: `Business ${businessId}` } })
  }
  for (const restaurantId of RESTAURANTS) {
    await run(UpsertRestaurantDocument, {
      input: {
        restaurantId,
        name: `Restaurant ${restaurantId}`,
        tables: TABLES.map((tableId) => ({ tableId, capacity: 4 })),
      },
    })
  }
  // Orders exist and have their couriers before anyone subscribes to them.
  for (const orderId of ORDER_IDS) await publish.order(orderId)
  for (const orderId of DELIVERED_ORDERS) await publish.delivery(orderId, 'ASSIGNED')

  // Two connections per user, so no connection carries more than about sixteen subscriptions.
  for (const user of USERS) {
    const token = await tokenFor({ sub: user.sub, role: user.role, scopes: [...user.scopes] })
    const own = probes.filter((probe) => probe.user === user)
    const pair = [connectClient(server.wsUrl, token), connectClient(server.wsUrl, token)]
    clients.push(...pair)
    own.forEach((probe, i) => {
      const client = pair[i % 2] as Client
      probe.sub = subscribe(client, probe.document, probe.variables)
    })
  }
}, 60_000)

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('tenant isolation', () => {
  it('covers many allowed and many forbidden subscriptions', () => {
    const allowed = probes.filter((probe) => probe.allowed).length
    expect(probes.length).toBe(USERS.length * 32)
    expect(allowed).toBeGreaterThan(100)
    expect(probes.length - allowed).toBeGreaterThan(300)
  })

  it('refuses every subscription the rules forbid with FORBIDDEN, and nothing else', async () => {
    const forbidden = probes.filter((probe) => !probe.allowed)
    await Promise.allSettled(forbidden.map((probe) => probe.sub?.waitForEnd(15_000)))
    const problems: string[] = []
    for (const probe of forbidden) {
      const results = probe.sub?.results ?? []
      const error = results[0]?.errors?.[0]
      if (results.length !== 1 || error?.extensions?.['code'] !== 'FORBIDDEN' || results[0]?.data) {
        problems.push(
          `${probe.user.sub} ${probe.label}: expected one FORBIDDEN, got ${JSON.stringify(results).slice(0, 300)}`,
        )
      } else if (
        probe.field !== 'adminActivity' &&
        error.message !== 'not allowed to read this channel'
      ) {
        problems.push(`${probe.user.sub} ${probe.label}: refusal says ${error.message}`)
      }
    }
    // Snapshot streams answer at once when allowed: their first result is data, not an error.
    const snapshots = probes.filter((probe) => probe.allowed && probe.channels.length === 0)
    await Promise.allSettled(snapshots.map((probe) => probe.sub?.waitForCount(1, 15_000)))
    for (const probe of snapshots) {
      const first = probe.sub?.results[0]
      if (first?.errors || !first?.data?.[probe.field]) {
        problems.push(`${probe.user.sub} ${probe.label}: allowed, got ${JSON.stringify(first)}`)
      }
      probe.sub?.unsubscribe()
    }
    // Allowed event streams are still open (they may not have seen an event yet).
    for (const probe of probes.filter((p) => p.allowed && p.channels.length > 0 && ended(p))) {
      problems.push(
        `${probe.user.sub} ${probe.label}: allowed, ended ${JSON.stringify(probe.sub?.error ?? probe.sub?.results)}`,
      )
    }
    expect(problems).toEqual([])
  })

  it('delivers to every user exactly the events the rules allow them, in order, and nothing else', async () => {
    const plan = fc.sample(
      fc.array(fc.tuple(fc.nat({ max: RANDOM_ACTIONS.length - 1 }), fc.nat({ max: 9_999 })), {
        minLength: RANDOM_PUBLISHES,
        maxLength: RANDOM_PUBLISHES,
      }),
      { seed: SEED, numRuns: 1 },
    )[0]
    // Broadcast until every live subscription got one: from then on, they miss nothing.
    const live = probes.filter((probe) => probe.live && probe.allowed)
    for (let attempt = 1; ; attempt += 1) {
      await publish.notify({ everyone: true })
      try {
        await vi.waitFor(
          () => {
            if (live.some((probe) => received(probe).length === 0)) throw new Error('not live')
          },
          { timeout: 500, interval: 20 },
        )
        break
      } catch (error) {
        if (attempt === 20) throw error
      }
    }
    barrier = { index: publish.ledger.length, heads: new Map(publish.heads) }

    for (const [action, pick] of plan ?? []) await RANDOM_ACTIONS[action]?.(pick)
    await publishOnEveryChannel()

    const streaming = probes.filter((probe) => probe.allowed && probe.channels.length > 0)
    await vi.waitFor(
      () => {
        const behind = streaming.filter(
          (probe) =>
            !ended(probe) &&
            received(probe).filter((event) => certain(probe, event)).length <
              expectedFor(probe).length,
        )
        if (behind.length > 0) {
          const [first] = behind
          throw new Error(
            `${behind.length} subscriptions behind, e.g. ${first?.user.sub} ${first?.label}: ${first && received(first).length}/${first && expectedFor(first).length}`,
          )
        }
      },
      { timeout: 20_000, interval: 50 },
    )

    const problems: string[] = []
    for (const probe of streaming) {
      const got = received(probe)
      const errors = (probe.sub?.results ?? []).flatMap((result) => result.errors ?? [])
      if (probe.sub?.error !== undefined || errors.length > 0) {
        problems.push(
          `${probe.user.sub} ${probe.label}: failed ${JSON.stringify(probe.sub?.error ?? errors)}`,
        )
        continue
      }
      const foreign = got.filter((event) => !probe.channels.includes(event.channel))
      if (foreign.length > 0) {
        problems.push(`${probe.user.sub} ${probe.label}: LEAK of ${foreign.map(key).join(', ')}`)
      }
      // In order within each channel; across the channels of one subscription, any interleaving.
      for (const name of probe.channels) {
        const want = expectedFor(probe).filter((event) => event.channel === name)
        const all = got.filter((event) => event.channel === name)
        const have = all.filter((event) => certain(probe, event))
        // A live probe may also have some of what came before the barrier: real events, in order.
        const logged = new Set(publish.ledger.map((event) => JSON.stringify(event)))
        const seqs = all.map((event) => event.seq)
        if (
          all.some((event) => !logged.has(JSON.stringify(event))) ||
          seqs.some((seq, i) => i > 0 && seq <= (seqs[i - 1] ?? 0))
        ) {
          problems.push(`${probe.user.sub} ${probe.label} on ${name}: got ${seqs.join(' ')}`)
        }
        if (JSON.stringify(have) !== JSON.stringify(want)) {
          problems.push(
            `${probe.user.sub} ${probe.label} on ${name}: want ${want.map((e) => `${e.seq}:${e.mark}`).join(' ')} got ${have.map((e) => `${e.seq}:${e.mark}`).join(' ')}`,
          )
        }
      }
    }

    // Per user, as the oracle states it: every event they may read, and none other.
    for (const user of USERS) {
      const mine = probes.filter((probe) => probe.user === user && probe.channels.length > 0)
      const got = new Set(mine.flatMap((probe) => received(probe).map(key)))
      const want = new Set(
        publish.ledger
          .filter((event) => {
            const resource = RESOURCE_OF.get(event.channel)
            return resource && canAskFor(user, resource) && mayRead(user, resource)
          })
          .map(key),
      )
      const leaked = [...got].filter((k) => !want.has(k))
      const missing = [...want].filter((k) => !got.has(k))
      if (leaked.length > 0) problems.push(`${user.sub}: LEAKED ${leaked.join(', ')}`)
      if (missing.length > 0) problems.push(`${user.sub}: missing ${missing.join(', ')}`)
    }

    // Refused subscriptions stayed refused: still nothing but their one error.
    for (const probe of probes.filter((p) => !p.allowed)) {
      if ((probe.sub?.results.length ?? 0) !== 1) {
        problems.push(
          `${probe.user.sub} ${probe.label}: refused, then got ${JSON.stringify(probe.sub?.results).slice(0, 300)}`,
        )
      }
    }
    expect(problems).toEqual([])
  })

  it('logged exactly what the ledger says was published, so the oracle judged the real events', async () => {
    const service = await tokenFor({ sub: 'auditor', role: 'service' })
    for (const [name, head] of publish.heads) {
      const { recentEvents } = await mustExecute(server.url, service, RecentEventsDocument, {
        channel: name,
        last: 500,
      })
      expect(
        recentEvents.map((event) => event.seq),
        name,
      ).toEqual(Array.from({ length: head }, (_, i) => i + 1))
    }
    // Every channel of the fixture was published on, so every allowed subscription streamed.
    expect([...RESOURCE_OF.keys()].filter((name) => !publish.heads.has(name))).toEqual([])
  })
})
