import type { Queryable } from '../db/database.js'
import {
  assignCourier,
  findOrder,
  listSellerOrders,
  type Order,
  upsertOrder,
} from '../db/projections/orders.js'
import { badInput, notFound } from '../errors.js'
import type { ChannelRef } from '../events/channels.js'
import { DELIVERY_STATUSES, ORDER_STATUSES } from '../events/event-map.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, resolveEventType, toEventView } from './event-interface.js'
import { checkId, publisherOf, readerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { AFTER_DESCRIPTION, idArg, nowIso, trimmedOrNull } from './inputs.js'
import { followChannels } from './streams.js'

const orderChannel = (orderId: string): ChannelRef => ({ kind: 'order', orderId })
const sellerOrdersChannel = (sellerId: string): ChannelRef => ({ kind: 'sellerOrders', sellerId })
const inventoryChannel = (sellerId: string): ChannelRef => ({ kind: 'sellerInventory', sellerId })
const deliveriesChannel = (courierId: string): ChannelRef => ({
  kind: 'courierDeliveries',
  courierId,
})

const MAX_SELLER_ORDERS = 200
const MAX_TEXT_LENGTH = 200

const OrderStatusEnum = builder.enumType('OrderStatus', { values: ORDER_STATUSES })
const DeliveryStatusEnum = builder.enumType('DeliveryStatus', { values: DELIVERY_STATUSES })

const OrderRef = builder.objectRef<Order>('Order').implement({
  description: 'A marketplace order as its latest update left it.',
  fields: (t) => ({
    id: t.exposeID('id'),
    sellerId: t.exposeID('sellerId'),
    buyerId: t.exposeID('buyerId'),
    courierId: t.exposeID('courierId', {
      nullable: true,
      description: 'Who delivers it, once a delivery update named a courier.',
    }),
    status: t.expose('status', { type: OrderStatusEnum }),
    trackingNumber: t.exposeString('trackingNumber', { nullable: true }),
    total: t.exposeFloat('total', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
})

const OrderStatusChanged = builder
  .objectRef<EventView<'order.statusChanged'>>('OrderStatusChanged')
  .implement({
    description: 'An order changed status (or was first published).',
    interfaces: [EventInterface],
    fields: (t) => ({
      orderId: t.exposeID('orderId'),
      sellerId: t.exposeID('sellerId'),
      buyerId: t.exposeID('buyerId'),
      status: t.expose('status', { type: OrderStatusEnum }),
      previousStatus: t.expose('previousStatus', {
        type: OrderStatusEnum,
        nullable: true,
        description: 'Null for the first update of an order.',
      }),
      trackingNumber: t.exposeString('trackingNumber', { nullable: true }),
      total: t.exposeFloat('total', { nullable: true }),
      changedAt: t.expose('changedAt', { type: 'DateTime' }),
    }),
  })

const DeliveryUpdated = builder
  .objectRef<EventView<'order.deliveryUpdated'>>('DeliveryUpdated')
  .implement({
    description: "A courier's progress with an order.",
    interfaces: [EventInterface],
    fields: (t) => ({
      orderId: t.exposeID('orderId'),
      courierId: t.exposeID('courierId'),
      // Not `status`: it would clash with OrderStatusChanged.status (another enum) in one
      // OrderEvent selection.
      deliveryStatus: t.expose('status', { type: DeliveryStatusEnum }),
      latitude: t.exposeFloat('latitude', { nullable: true }),
      longitude: t.exposeFloat('longitude', { nullable: true }),
      eta: t.expose('eta', { type: 'DateTime', nullable: true }),
      changedAt: t.expose('changedAt', { type: 'DateTime' }),
    }),
  })

const InventoryAlert = builder
  .objectRef<EventView<'order.inventoryAlert'>>('InventoryAlert')
  .implement({
    description: "A seller's product fell to or below its stock threshold.",
    interfaces: [EventInterface],
    fields: (t) => ({
      sellerId: t.exposeID('sellerId'),
      productId: t.exposeID('productId'),
      productName: t.exposeString('productName'),
      stockLevel: t.exposeInt('stockLevel'),
      threshold: t.exposeInt('threshold'),
      raisedAt: t.expose('raisedAt', { type: 'DateTime' }),
    }),
  })

type OrderEventType = 'order.statusChanged' | 'order.deliveryUpdated'

const OrderEvent = builder.unionType('OrderEvent', {
  description: 'Status changes and delivery progress of orders, in one ordered stream.',
  types: [OrderStatusChanged, DeliveryUpdated],
  resolveType: resolveEventType({
    'order.statusChanged': 'OrderStatusChanged',
    'order.deliveryUpdated': 'DeliveryUpdated',
  }),
})

/** Loads an order the viewer may read; `NOT_FOUND` only after authorization passed. */
async function requireOrder(db: Queryable, orderId: string): Promise<Order> {
  const order = await findOrder(db, orderId)
  if (!order) throw notFound(`order "${orderId}"`)
  return order
}

function checkText(field: string, value: string): string {
  const text = value.trim()
  if (!text) throw badInput(field, 'must not be empty')
  if (text.length > MAX_TEXT_LENGTH) {
    throw badInput(field, `expected at most ${MAX_TEXT_LENGTH} characters, got ${text.length}`)
  }
  return text
}

function checkCount(field: string, value: number): number {
  if (!(value >= 0)) throw badInput(field, `expected a non-negative integer, got ${value}`)
  return value
}

function checkCoordinate(field: string, value: number | null | undefined, limit: number) {
  if (value === null || value === undefined) return null
  if (!(Math.abs(value) <= limit))
    throw badInput(field, `expected -${limit} to ${limit}, got ${value}`)
  return value
}

builder.queryFields((t) => ({
  order: t.field({
    type: OrderRef,
    description: 'An order, for its seller, buyer, courier or a backend.',
    args: { orderId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const orderId = idArg('orderId', args.orderId)
      await readerOf(ctx, [orderChannel(orderId)])
      return requireOrder(ctx.services.db, orderId)
    },
  }),
  sellerOrders: t.field({
    type: [OrderRef],
    description: "A seller's orders, most recently updated first.",
    args: {
      sellerId: t.arg.id({ required: true }),
      first: t.arg.int({ defaultValue: 50, description: `How many (1-${MAX_SELLER_ORDERS}).` }),
    },
    resolve: async (_root, args, ctx) => {
      const sellerId = idArg('sellerId', args.sellerId)
      const first = args.first ?? 50
      if (!(first >= 1 && first <= MAX_SELLER_ORDERS)) {
        throw badInput('first', `expected 1 to ${MAX_SELLER_ORDERS}, got ${first}`)
      }
      await readerOf(ctx, [sellerOrdersChannel(sellerId)])
      return listSellerOrders(ctx.services.db, sellerId, first)
    },
  }),
}))

const PublishOrderUpdateInput = builder.inputType('PublishOrderUpdateInput', {
  fields: (t) => ({
    orderId: t.id({ required: true }),
    sellerId: t.id({ required: true, description: 'Fixed by the first update of the order.' }),
    buyerId: t.id({ required: true, description: 'Fixed by the first update of the order.' }),
    status: t.field({ type: OrderStatusEnum, required: true }),
    trackingNumber: t.string({ description: 'Omitted: the order keeps the one it has.' }),
    total: t.float({ description: 'Omitted: the order keeps the one it has.' }),
  }),
})

const PublishInventoryAlertInput = builder.inputType('PublishInventoryAlertInput', {
  fields: (t) => ({
    sellerId: t.id({ required: true }),
    productId: t.id({ required: true }),
    productName: t.string({ required: true }),
    stockLevel: t.int({ required: true }),
    threshold: t.int({ required: true }),
  }),
})

const PublishDeliveryUpdateInput = builder.inputType('PublishDeliveryUpdateInput', {
  fields: (t) => ({
    orderId: t.id({ required: true }),
    courierId: t.id({ required: true, description: 'Becomes the courier of the order.' }),
    status: t.field({ type: DeliveryStatusEnum, required: true }),
    latitude: t.float(),
    longitude: t.float(),
    eta: t.field({ type: 'DateTime' }),
  }),
})

builder.mutationFields((t) => ({
  publishOrderUpdate: t.field({
    type: OrderStatusChanged,
    description:
      "Creates or updates an order and publishes its status change to the order's and the seller's streams.",
    args: { input: t.arg({ type: PublishOrderUpdateInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const orderId = idArg('input.orderId', input.orderId)
      const sellerId = idArg('input.sellerId', input.sellerId)
      const buyerId = idArg('input.buyerId', input.buyerId)
      const total = input.total ?? null
      if (total !== null && !(Number.isFinite(total) && total >= 0)) {
        throw badInput('input.total', `expected a non-negative amount, got ${total}`)
      }
      const at = nowIso()
      const event = await publishOnce(ctx, info, async (scope) => {
        const outcome = await upsertOrder(scope.tx, {
          id: orderId,
          sellerId,
          buyerId,
          status: input.status,
          trackingNumber: trimmedOrNull(input.trackingNumber),
          total,
          at,
        })
        if (!outcome.ok) {
          const field = outcome.existing.sellerId !== sellerId ? 'sellerId' : 'buyerId'
          throw badInput(`input.${field}`, `order "${orderId}" already has another ${field}`)
        }
        const { order, previousStatus } = outcome
        const data = {
          orderId,
          sellerId,
          buyerId,
          status: order.status,
          previousStatus,
          trackingNumber: order.trackingNumber,
          total: order.total,
          changedAt: at,
        }
        const appended = await scope.append(orderChannel(orderId), 'order.statusChanged', data)
        await scope.append(sellerOrdersChannel(sellerId), 'order.statusChanged', data)
        return appended
      })
      return toEventView(event)
    },
  }),
  publishInventoryAlert: t.field({
    type: InventoryAlert,
    description: "Publishes a low-stock alert to the seller's inventory stream.",
    args: {
      input: t.arg({ type: PublishInventoryAlertInput, required: true }),
      ...IDEMPOTENCY_ARGS,
    },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const sellerId = idArg('input.sellerId', input.sellerId)
      const productId = idArg('input.productId', input.productId)
      const data = {
        sellerId,
        productId,
        productName: checkText('input.productName', input.productName),
        stockLevel: checkCount('input.stockLevel', input.stockLevel),
        threshold: checkCount('input.threshold', input.threshold),
        raisedAt: nowIso(),
      }
      const event = await publishOnce(ctx, info, (scope) =>
        scope.append(inventoryChannel(sellerId), 'order.inventoryAlert', data),
      )
      return toEventView(event)
    },
  }),
  publishDeliveryUpdate: t.field({
    type: DeliveryUpdated,
    description:
      "Records the courier of an order and publishes its progress to the order's and the courier's streams.",
    args: {
      input: t.arg({ type: PublishDeliveryUpdateInput, required: true }),
      ...IDEMPOTENCY_ARGS,
    },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const orderId = idArg('input.orderId', input.orderId)
      const courierId = idArg('input.courierId', input.courierId)
      const at = nowIso()
      const data = {
        orderId,
        courierId,
        status: input.status,
        latitude: checkCoordinate('input.latitude', input.latitude, 90),
        longitude: checkCoordinate('input.longitude', input.longitude, 180),
        eta: input.eta ?? null,
        changedAt: at,
      }
      const event = await publishOnce(ctx, info, async (scope) => {
        if (!(await assignCourier(scope.tx, { orderId, courierId, at }))) {
          throw notFound(`order "${orderId}"`)
        }
        const appended = await scope.append(orderChannel(orderId), 'order.deliveryUpdated', data)
        await scope.append(deliveriesChannel(courierId), 'order.deliveryUpdated', data)
        // Who may read the order may have changed: its subscribers are checked again.
        scope.signal(orderChannel(orderId))
        return appended
      })
      return toEventView(event)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  orderUpdated: t.field({
    type: OrderEvent,
    description:
      "One order's status changes and delivery progress (`orderId`), or the status changes of all of a seller's orders (`sellerId`). Give exactly one.",
    args: {
      orderId: t.arg.id(),
      sellerId: t.arg.id(),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: async (_root, args, ctx) => {
      if ((args.orderId == null) === (args.sellerId == null)) {
        throw badInput('orderId', 'give exactly one of orderId or sellerId')
      }
      if (args.sellerId != null) {
        const sellerId = idArg('sellerId', args.sellerId)
        return followChannels<OrderEventType>(ctx, [sellerOrdersChannel(sellerId)], {
          after: args.after,
        })
      }
      const orderId = checkId('orderId', String(args.orderId))
      await readerOf(ctx, [orderChannel(orderId)])
      await requireOrder(ctx.services.db, orderId)
      return followChannels<OrderEventType>(ctx, [orderChannel(orderId)], { after: args.after })
    },
    resolve: (event) => toEventView(event),
  }),
  inventoryAlert: t.field({
    type: InventoryAlert,
    description: "Low-stock alerts of a seller's products, resumable with `after`.",
    args: {
      sellerId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: (_root, args, ctx) => {
      const sellerId = idArg('sellerId', args.sellerId)
      return followChannels<'order.inventoryAlert'>(ctx, [inventoryChannel(sellerId)], {
        after: args.after,
      })
    },
    resolve: (event) => toEventView(event),
  }),
  deliveryUpdated: t.field({
    type: DeliveryUpdated,
    description: "Progress of a courier's deliveries, for that courier; resumable with `after`.",
    args: {
      courierId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: (_root, args, ctx) => {
      const courierId = idArg('courierId', args.courierId)
      return followChannels<'order.deliveryUpdated'>(ctx, [deliveriesChannel(courierId)], {
        after: args.after,
      })
    },
    resolve: (event) => toEventView(event),
  }),
}))
