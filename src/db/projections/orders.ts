import type { OrderStatus } from '../../events/event-map.js'
import type { Queryable } from '../database.js'
import { toIso } from './sql-values.js'

export interface Order {
  readonly id: string
  readonly sellerId: string
  readonly buyerId: string
  readonly courierId: string | null
  readonly status: OrderStatus
  readonly trackingNumber: string | null
  readonly total: number | null
  readonly createdAt: string
  readonly updatedAt: string
}

/** An order's new status as a backend reports it. */
export interface OrderUpdate {
  readonly id: string
  readonly sellerId: string
  readonly buyerId: string
  readonly status: OrderStatus
  /** Null keeps the tracking number the order already has. */
  readonly trackingNumber: string | null
  /** Null keeps the total the order already has. */
  readonly total: number | null
  readonly at: string
}

/** What `upsertOrder` did: the order after the change and the status it had before. */
export type OrderUpsert =
  | { readonly ok: true; readonly order: Order; readonly previousStatus: OrderStatus | null }
  | { readonly ok: false; readonly existing: Order }

interface OrderRow {
  id: string
  seller_id: string
  buyer_id: string
  courier_id: string | null
  status: OrderStatus
  tracking_number: string | null
  total: string | number | null
  created_at: Date | string
  updated_at: Date | string
}

const toOrder = (row: OrderRow): Order => ({
  id: row.id,
  sellerId: row.seller_id,
  buyerId: row.buyer_id,
  courierId: row.courier_id,
  status: row.status,
  trackingNumber: row.tracking_number,
  total: row.total === null ? null : Number(row.total),
  createdAt: toIso(row.created_at),
  updatedAt: toIso(row.updated_at),
})

/**
 * Creates the order or sets its status, returning the status it had. An existing order whose
 * seller or buyer differs from `update` is left as is (`ok: false`): the parties decide who may
 * read the order, so they never change. Inserting first means concurrent first updates of one
 * order queue on its key instead of both seeing no row.
 */
export async function upsertOrder(tx: Queryable, update: OrderUpdate): Promise<OrderUpsert> {
  const [created] = await tx.query<OrderRow>(
    `insert into orders (id, seller_id, buyer_id, status, tracking_number, total, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $7) on conflict (id) do nothing returning *`,
    [
      update.id,
      update.sellerId,
      update.buyerId,
      update.status,
      update.trackingNumber,
      update.total,
      update.at,
    ],
  )
  if (created) return { ok: true, order: toOrder(created), previousStatus: null }
  const existing = await lockOrder(tx, update.id)
  if (!existing) throw new Error(`order ${update.id} vanished during upsert`)
  if (existing.sellerId !== update.sellerId || existing.buyerId !== update.buyerId) {
    return { ok: false, existing }
  }
  const [row] = await tx.query<OrderRow>(
    `update orders set status = $2, tracking_number = coalesce($3, tracking_number),
       total = coalesce($4, total), updated_at = $5
     where id = $1 returning *`,
    [update.id, update.status, update.trackingNumber, update.total, update.at],
  )
  if (!row) throw new Error(`order ${update.id} vanished during upsert`)
  return { ok: true, order: toOrder(row), previousStatus: existing.status }
}

/** The order, locked until the transaction ends; `undefined` when it does not exist. */
async function lockOrder(tx: Queryable, orderId: string): Promise<Order | undefined> {
  const [row] = await tx.query<OrderRow>('select * from orders where id = $1 for update', [orderId])
  return row && toOrder(row)
}

/** Records who delivers the order; `undefined` when the order does not exist. */
export async function assignCourier(
  tx: Queryable,
  change: { orderId: string; courierId: string; at: string },
): Promise<Order | undefined> {
  const [row] = await tx.query<OrderRow>(
    'update orders set courier_id = $2, updated_at = $3 where id = $1 returning *',
    [change.orderId, change.courierId, change.at],
  )
  return row && toOrder(row)
}

/** The order, or `undefined` when it does not exist. */
export async function findOrder(db: Queryable, orderId: string): Promise<Order | undefined> {
  const [row] = await db.query<OrderRow>('select * from orders where id = $1', [orderId])
  return row && toOrder(row)
}

/** A seller's orders, most recently updated first. */
export async function listSellerOrders(
  db: Queryable,
  sellerId: string,
  limit: number,
): Promise<Order[]> {
  const rows = await db.query<OrderRow>(
    'select * from orders where seller_id = $1 order by updated_at desc, id limit $2',
    [sellerId, limit],
  )
  return rows.map(toOrder)
}
