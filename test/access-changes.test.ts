import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  OrderUpdatedDocument,
  PublishDeliveryUpdateDocument,
  PublishOrderUpdateDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
})

afterAll(async () => {
  await server?.stop()
})

const assignCourier = (orderId: string, courierId: string) =>
  mustExecute(server.url, service, PublishDeliveryUpdateDocument, {
    input: { orderId, courierId, status: 'ASSIGNED' },
  })

describe('access that changes while a subscription runs', () => {
  it('ends a courier’s order stream with FORBIDDEN when the order gets another courier', async () => {
    await mustExecute(server.url, service, PublishOrderUpdateDocument, {
      input: { orderId: 'AC1', sellerId: 'S9', buyerId: 'b-9', status: 'PAID' },
    })
    await assignCourier('AC1', 'courier-a')
    const formerCourier = connectClient(
      server.wsUrl,
      await tokenFor({ sub: 'courier-a', role: 'delivery' }),
    )
    const buyer = connectClient(server.wsUrl, await tokenFor({ sub: 'b-9', role: 'client' }))
    const after = fromStart('order:AC1')
    const courierSub = subscribe(formerCourier, OrderUpdatedDocument, { orderId: 'AC1', after })
    const buyerSub = subscribe(buyer, OrderUpdatedDocument, { orderId: 'AC1', after })
    await courierSub.waitForCount(2)

    await assignCourier('AC1', 'courier-b')
    await mustExecute(server.url, service, PublishOrderUpdateDocument, {
      input: {
        orderId: 'AC1',
        sellerId: 'S9',
        buyerId: 'b-9',
        status: 'SHIPPED',
        trackingNumber: 'TRACK-SECRET',
      },
    })
    await courierSub.waitForEnd()
    expect(courierSub.error).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN' }) }),
    ])
    // The reassignment is the last event the former courier saw; nothing published after it.
    expect(JSON.stringify(courierSub.results)).not.toContain('TRACK-SECRET')
    expect(courierSub.data.map((data) => data.orderUpdated.seq)).toEqual([1, 2, 3])
    // The buyer keeps reading.
    await buyerSub.waitForCount(4)
    expect(buyerSub.data.at(-1)?.orderUpdated).toMatchObject({ trackingNumber: 'TRACK-SECRET' })
    await formerCourier.dispose()
    await buyer.dispose()
  })
})
