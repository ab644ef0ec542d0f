import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChannelRef, channelName } from '../src/events/channels.js'
import { encodeCursor } from '../src/events/cursor.js'
import {
  DeliveryUpdatedDocument,
  InventoryAlertDocument,
  OrderDocument,
  OrderUpdatedDocument,
  PublishDeliveryUpdateDocument,
  PublishInventoryAlertDocument,
  PublishOrderUpdateDocument,
  RecentEventsDocument,
  SellerOrdersDocument,
} from './generated/graphql.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
const tokens = { seller: '', buyer: '', courier: '', stranger: '', otherSeller: '' }
const clients: Record<keyof typeof tokens, Client> = {} as never

/**
 * A cursor at `seq` of each channel. Subscribing from a known position means an event published
 * right after `subscribe()` is replayed even if the server was still setting the stream up.
 */
const cursorAt = (...positions: Array<[ChannelRef, number]>) =>
  encodeCursor(new Map(positions.map(([ref, seq]) => [channelName(ref), seq])))

const orderRef = (orderId: string): ChannelRef => ({ kind: 'order', orderId })
const sellerRef = (sellerId: string): ChannelRef => ({ kind: 'sellerOrders', sellerId })

const codeOf = (result: { errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }) =>
  result.errors?.[0]?.extensions?.['code']

const publishOrder = (
  orderId: string,
  status: 'PENDING' | 'PAID' | 'SHIPPED' | 'DELIVERED',
  extra: { trackingNumber?: string; total?: number } = {},
) =>
  mustExecute(server.url, service, PublishOrderUpdateDocument, {
    input: { orderId, sellerId: 'S1', buyerId: 'buyer-1', status, ...extra },
  })

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  tokens.seller = await tokenFor({ sub: 'sally', role: 'seller', scopes: ['seller:S1'] })
  tokens.otherSeller = await tokenFor({ sub: 'oscar', role: 'seller', scopes: ['seller:S2'] })
  tokens.buyer = await tokenFor({ sub: 'buyer-1', role: 'client' })
  tokens.stranger = await tokenFor({ sub: 'buyer-2', role: 'client' })
  tokens.courier = await tokenFor({ sub: 'courier-1', role: 'delivery' })
  for (const [name, token] of Object.entries(tokens)) {
    clients[name as keyof typeof tokens] = connectClient(server.wsUrl, token)
  }
})

afterAll(async () => {
  await Promise.all(Object.values(clients).map((client) => client?.dispose()))
  await server?.stop()
})

describe('orders', () => {
  it('publishes each status change once to the order and once to the seller stream', async () => {
    const created = await publishOrder('O1', 'PENDING', { total: 42.5 })
    expect(created.publishOrderUpdate).toMatchObject({
      channel: 'order:O1',
      seq: 1,
      status: 'PENDING',
      previousStatus: null,
      total: 42.5,
    })
    const buyerSub = subscribe(clients.buyer, OrderUpdatedDocument, {
      orderId: 'O1',
      after: cursorAt([orderRef('O1'), 1]),
    })
    const sellerSub = subscribe(clients.seller, OrderUpdatedDocument, {
      sellerId: 'S1',
      after: cursorAt([sellerRef('S1'), 1]),
    })
    await publishOrder('O1', 'PAID')
    await publishOrder('O1', 'SHIPPED', { trackingNumber: 'TN-1' })

    for (const [sub, channel] of [
      [buyerSub, 'order:O1'],
      [sellerSub, 'seller:S1:orders'],
    ] as const) {
      const events = (await sub.waitForCount(2)).map((d) => d.orderUpdated)
      sub.unsubscribe()
      expect(events.map((e) => e.__typename)).toEqual(['OrderStatusChanged', 'OrderStatusChanged'])
      expect(events.map((e) => e.seq)).toEqual([2, 3])
      for (const event of events) {
        expect(event.channel).toBe(channel)
        expect(event.cursor).toMatch(/^c1\./)
      }
      expect(events[0]).toMatchObject({ status: 'PAID', previousStatus: 'PENDING', total: 42.5 })
      expect(events[1]).toMatchObject({
        orderId: 'O1',
        sellerId: 'S1',
        buyerId: 'buyer-1',
        status: 'SHIPPED',
        previousStatus: 'PAID',
        trackingNumber: 'TN-1',
        total: 42.5,
      })
    }
    // Exactly one append per channel and publish.
    for (const channel of ['order:O1', 'seller:S1:orders']) {
      const { recentEvents } = await mustExecute(server.url, service, RecentEventsDocument, {
        channel,
        last: 10,
      })
      expect(recentEvents.map((e) => e.type)).toEqual(Array(3).fill('order.statusChanged'))
    }
  })

  it('streams delivery progress to the order and the courier, who may then read the order', async () => {
    const before = await execute(server.url, tokens.courier, OrderDocument, { orderId: 'O1' })
    expect(codeOf(before)).toBe('FORBIDDEN')
    const courierSub = subscribe(clients.courier, DeliveryUpdatedDocument, {
      courierId: 'courier-1',
      after: cursorAt([{ kind: 'courierDeliveries', courierId: 'courier-1' }, 0]),
    })
    const buyerSub = subscribe(clients.buyer, OrderUpdatedDocument, {
      orderId: 'O1',
      after: cursorAt([orderRef('O1'), 3]),
    })
    const eta = '2026-05-01T12:30:00.000Z'
    const published = await mustExecute(server.url, service, PublishDeliveryUpdateDocument, {
      input: {
        orderId: 'O1',
        courierId: 'courier-1',
        status: 'PICKED_UP',
        latitude: 48.85,
        longitude: 2.35,
        eta,
      },
    })
    expect(published.publishDeliveryUpdate).toMatchObject({ channel: 'order:O1', seq: 4 })

    const [courierData] = await courierSub.waitForCount(1)
    courierSub.unsubscribe()
    expect(courierData?.deliveryUpdated).toMatchObject({
      channel: 'courier:courier-1:deliveries',
      seq: 1,
      orderId: 'O1',
      courierId: 'courier-1',
      deliveryStatus: 'PICKED_UP',
      latitude: 48.85,
      longitude: 2.35,
      eta,
    })
    expect(courierData?.deliveryUpdated.cursor).toMatch(/^c1\./)
    const [buyerData] = await buyerSub.waitForCount(1)
    buyerSub.unsubscribe()
    expect(buyerData?.orderUpdated).toMatchObject({
      __typename: 'DeliveryUpdated',
      channel: 'order:O1',
      seq: 4,
      deliveryStatus: 'PICKED_UP',
    })

    const { order } = await mustExecute(server.url, tokens.courier, OrderDocument, {
      orderId: 'O1',
    })
    expect(order).toMatchObject({
      courierId: 'courier-1',
      status: 'SHIPPED',
      trackingNumber: 'TN-1',
    })
  })

  it("streams a seller's inventory alerts to that seller", async () => {
    const sub = subscribe(clients.seller, InventoryAlertDocument, {
      sellerId: 'S1',
      after: cursorAt([{ kind: 'sellerInventory', sellerId: 'S1' }, 0]),
    })
    await mustExecute(server.url, service, PublishInventoryAlertDocument, {
      input: { sellerId: 'S1', productId: 'P-9', productName: 'Mug', stockLevel: 2, threshold: 5 },
    })
    const [data] = await sub.waitForCount(1)
    sub.unsubscribe()
    expect(data?.inventoryAlert).toMatchObject({
      channel: 'seller:S1:inventory',
      seq: 1,
      sellerId: 'S1',
      productId: 'P-9',
      productName: 'Mug',
      stockLevel: 2,
      threshold: 5,
    })
    expect(data?.inventoryAlert.cursor).toMatch(/^c1\./)
  })

  it('answers order queries for the parties only', async () => {
    await publishOrder('O2', 'PENDING')
    for (const token of [tokens.buyer, tokens.seller, service]) {
      const { order } = await mustExecute(server.url, token, OrderDocument, { orderId: 'O1' })
      expect(order).toMatchObject({ id: 'O1', sellerId: 'S1', buyerId: 'buyer-1' })
    }
    const { sellerOrders } = await mustExecute(server.url, tokens.seller, SellerOrdersDocument, {
      sellerId: 'S1',
    })
    expect(sellerOrders.map((o) => o.id)).toEqual(['O2', 'O1'])
    const missing = await execute(server.url, service, OrderDocument, { orderId: 'nope' })
    expect(codeOf(missing)).toBe('NOT_FOUND')
  })

  it('refuses strangers with FORBIDDEN, the same whether the order exists, and leaks nothing', async () => {
    const existing = await execute(server.url, tokens.stranger, OrderDocument, { orderId: 'O1' })
    const unknown = await execute(server.url, tokens.stranger, OrderDocument, { orderId: 'nope' })
    expect(existing.data).toBeNull()
    expect(codeOf(existing)).toBe('FORBIDDEN')
    expect(unknown.errors).toEqual(existing.errors)
    const otherSellers = await execute(server.url, tokens.otherSeller, SellerOrdersDocument, {
      sellerId: 'S1',
    })
    expect(codeOf(otherSellers)).toBe('FORBIDDEN')

    const refused = [
      subscribe(clients.stranger, OrderUpdatedDocument, { orderId: 'O1' }),
      subscribe(clients.stranger, OrderUpdatedDocument, {
        orderId: 'O1',
        after: cursorAt([orderRef('O1'), 0]),
      }),
      subscribe(clients.otherSeller, OrderUpdatedDocument, { sellerId: 'S1' }),
      subscribe(clients.otherSeller, InventoryAlertDocument, { sellerId: 'S1' }),
      subscribe(clients.stranger, DeliveryUpdatedDocument, { courierId: 'courier-1' }),
    ]
    for (const sub of refused) {
      await sub.waitForEnd()
      expect(sub.data).toEqual([])
      expect(sub.results).toHaveLength(1)
      expect(sub.results[0]?.errors?.[0]).toMatchObject({
        message: 'not allowed to read this channel',
        extensions: { code: 'FORBIDDEN' },
      })
      expect(JSON.stringify(sub.results)).not.toMatch(/buyer-1|TN-1|S1|courier-1/)
    }

    const publishedByClient = await execute(server.url, tokens.buyer, PublishOrderUpdateDocument, {
      input: { orderId: 'O1', sellerId: 'S1', buyerId: 'buyer-1', status: 'CANCELLED' },
    })
    expect(codeOf(publishedByClient)).toBe('FORBIDDEN')
  })

  it('rejects changing the parties of an order, ambiguous subscriptions and unknown orders', async () => {
    for (const input of [
      { orderId: 'O1', sellerId: 'S2', buyerId: 'buyer-1', status: 'PAID' as const },
      { orderId: 'O1', sellerId: 'S1', buyerId: 'buyer-2', status: 'PAID' as const },
    ]) {
      const result = await execute(server.url, service, PublishOrderUpdateDocument, { input })
      expect(codeOf(result)).toBe('BAD_USER_INPUT')
    }
    const { order } = await mustExecute(server.url, service, OrderDocument, { orderId: 'O1' })
    expect(order).toMatchObject({ sellerId: 'S1', buyerId: 'buyer-1', status: 'SHIPPED' })
    const { recentEvents } = await mustExecute(server.url, service, RecentEventsDocument, {
      channel: 'seller:S2:orders',
    })
    expect(recentEvents).toEqual([])

    for (const variables of [{}, { orderId: 'O1', sellerId: 'S1' }]) {
      const sub = subscribe(clients.seller, OrderUpdatedDocument, variables)
      await sub.waitForEnd()
      expect(sub.results[0]?.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT')
    }

    const delivery = await execute(server.url, service, PublishDeliveryUpdateDocument, {
      input: { orderId: 'nope', courierId: 'courier-1', status: 'ASSIGNED' },
    })
    expect(codeOf(delivery)).toBe('NOT_FOUND')
    const badLatitude = await execute(server.url, service, PublishDeliveryUpdateDocument, {
      input: { orderId: 'O1', courierId: 'courier-1', status: 'IN_TRANSIT', latitude: 91 },
    })
    expect(codeOf(badLatitude)).toBe('BAD_USER_INPUT')
  })
})
