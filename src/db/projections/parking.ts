import type { PaymentMethod, SpaceState } from '../../events/event-map.js'
import type { Queryable } from '../database.js'
import { toIso } from './sql-values.js'

export interface Lot {
  readonly id: string
  readonly name: string
  readonly alertThreshold: number
  readonly occupancyAlertActive: boolean
}

export interface ParkingSpace {
  readonly lotId: string
  readonly number: string
  readonly state: SpaceState
  readonly vehiclePlate: string | null
  readonly customerName: string | null
  readonly updatedAt: string
}

export interface LotStats {
  readonly lotId: string
  readonly totalSpaces: number
  readonly freeSpaces: number
  readonly occupiedSpaces: number
  readonly reservedSpaces: number
  readonly outOfServiceSpaces: number
  /** Occupied share of all spaces, 0 to 1. */
  readonly occupancyRate: number
  /** Sum of payments since 00:00 UTC today. */
  readonly revenueToday: number
}

export interface Ticket {
  readonly id: string
  readonly lotId: string
  readonly vehiclePlate: string
  readonly spaceNumber: string | null
  readonly customerName: string | null
  readonly entryAt: string
  readonly paidAt: string | null
}

/** Creates or renames a lot and adds the spaces it does not have yet (existing ones stay). */
export async function upsertLot(
  tx: Queryable,
  lot: { id: string; name: string; alertThreshold: number | null; spaces: readonly string[] },
): Promise<void> {
  await tx.query(
    `insert into lots (id, name, alert_threshold) values ($1, $2, coalesce($3, 0.95))
     on conflict (id) do update set name = excluded.name,
       alert_threshold = coalesce($3, lots.alert_threshold)`,
    [lot.id, lot.name, lot.alertThreshold],
  )
  if (lot.spaces.length > 0) {
    await tx.query(
      `insert into parking_spaces (lot_id, number)
       select $1, unnest($2::text[]) on conflict do nothing`,
      [lot.id, lot.spaces],
    )
  }
}

export async function findLot(db: Queryable, lotId: string): Promise<Lot | undefined> {
  const [row] = await db.query<{
    id: string
    name: string
    alert_threshold: number
    occupancy_alert_active: boolean
  }>('select id, name, alert_threshold, occupancy_alert_active from lots where id = $1', [lotId])
  return (
    row && {
      id: row.id,
      name: row.name,
      alertThreshold: Number(row.alert_threshold),
      occupancyAlertActive: row.occupancy_alert_active,
    }
  )
}

interface SpaceRow {
  lot_id: string
  number: string
  state: SpaceState
  vehicle_plate: string | null
  customer_name: string | null
  updated_at: Date | string
}

const toSpace = (row: SpaceRow): ParkingSpace => ({
  lotId: row.lot_id,
  number: row.number,
  state: row.state,
  vehiclePlate: row.vehicle_plate,
  customerName: row.customer_name,
  updatedAt: toIso(row.updated_at),
})

export async function listSpaces(db: Queryable, lotId: string): Promise<ParkingSpace[]> {
  const rows = await db.query<SpaceRow>(
    'select * from parking_spaces where lot_id = $1 order by number',
    [lotId],
  )
  return rows.map(toSpace)
}

/**
 * Sets a space's state and returns the state it had, or `undefined` when the space does not
 * exist. One statement: the row is locked first, so concurrent changes to one space see each
 * other's previous state.
 */
export async function setSpaceState(
  tx: Queryable,
  change: {
    lotId: string
    number: string
    state: SpaceState
    vehiclePlate: string | null
    customerName: string | null
    at: string
  },
): Promise<SpaceState | undefined> {
  const [row] = await tx.query<{ previous_state: SpaceState }>(
    `with previous as (
       select state from parking_spaces where lot_id = $1 and number = $2 for update
     )
     update parking_spaces set state = $3, vehicle_plate = $4, customer_name = $5, updated_at = $6
     from previous
     where lot_id = $1 and number = $2
     returning previous.state as previous_state`,
    [
      change.lotId,
      change.number,
      change.state,
      change.vehiclePlate,
      change.customerName,
      change.at,
    ],
  )
  return row?.previous_state
}

/** What the occupancy alert is decided on: the lot's threshold and flag, and its counts. */
export interface LotOccupancy {
  readonly alertThreshold: number
  readonly occupancyAlertActive: boolean
  readonly totalSpaces: number
  readonly occupiedSpaces: number
  readonly freeSpaces: number
  /** Occupied share of all spaces, 0 to 1. */
  readonly occupancyRate: number
}

/** Occupied share of `total` spaces, 0 to 1 (0 for a lot without spaces). */
const occupancyRate = (occupied: number, total: number): number =>
  total === 0 ? 0 : occupied / total

/** The lot's alert settings and space counts in one read; `undefined` when there is no lot. */
export async function lotOccupancy(
  db: Queryable,
  lotId: string,
): Promise<LotOccupancy | undefined> {
  const [row] = await db.query<Record<string, string | number | boolean>>(
    `select l.alert_threshold, l.occupancy_alert_active,
       count(s.number) as total,
       count(*) filter (where s.state = 'OCCUPIED') as occupied,
       count(*) filter (where s.state = 'FREE') as free
     from lots l left join parking_spaces s on s.lot_id = l.id
     where l.id = $1
     group by l.id`,
    [lotId],
  )
  if (!row) return undefined
  const total = Number(row['total'])
  const occupied = Number(row['occupied'])
  return {
    alertThreshold: Number(row['alert_threshold']),
    occupancyAlertActive: row['occupancy_alert_active'] === true,
    totalSpaces: total,
    occupiedSpaces: occupied,
    freeSpaces: Number(row['free']),
    occupancyRate: occupancyRate(occupied, total),
  }
}

export async function lotStats(db: Queryable, lotId: string): Promise<LotStats> {
  const [row] = await db.query<Record<string, string | number | null>>(
    `select
       count(*) as total,
       count(*) filter (where state = 'FREE') as free,
       count(*) filter (where state = 'OCCUPIED') as occupied,
       count(*) filter (where state = 'RESERVED') as reserved,
       count(*) filter (where state = 'OUT_OF_SERVICE') as out_of_service,
       (select coalesce(sum(amount), 0) from parking_payments
         where lot_id = $1 and paid_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc') as revenue
     from parking_spaces where lot_id = $1`,
    [lotId],
  )
  const total = Number(row?.['total'] ?? 0)
  const occupied = Number(row?.['occupied'] ?? 0)
  return {
    lotId,
    totalSpaces: total,
    freeSpaces: Number(row?.['free'] ?? 0),
    occupiedSpaces: occupied,
    reservedSpaces: Number(row?.['reserved'] ?? 0),
    outOfServiceSpaces: Number(row?.['out_of_service'] ?? 0),
    occupancyRate: occupancyRate(occupied, total),
    revenueToday: Number(row?.['revenue'] ?? 0),
  }
}

/** Records whether the occupancy alert is raised, so it fires once per crossing. */
export async function setOccupancyAlert(
  tx: Queryable,
  lotId: string,
  active: boolean,
): Promise<void> {
  await tx.query('update lots set occupancy_alert_active = $2 where id = $1', [lotId, active])
}

export async function insertTicket(
  tx: Queryable,
  ticket: Omit<Ticket, 'paidAt'>,
): Promise<boolean> {
  const rows = await tx.query(
    `insert into parking_tickets (id, lot_id, vehicle_plate, space_number, customer_name, entry_at)
     values ($1, $2, $3, $4, $5, $6) on conflict do nothing returning id`,
    [
      ticket.id,
      ticket.lotId,
      ticket.vehiclePlate,
      ticket.spaceNumber,
      ticket.customerName,
      ticket.entryAt,
    ],
  )
  return rows.length > 0
}

/** Records a payment; false when the ticket is unknown in this lot. */
export async function recordPayment(
  tx: Queryable,
  payment: {
    lotId: string
    ticketId: string
    amount: number
    method: PaymentMethod
    paidAt: string
  },
): Promise<boolean> {
  const updated = await tx.query(
    'update parking_tickets set paid_at = $3 where id = $1 and lot_id = $2 returning id',
    [payment.ticketId, payment.lotId, payment.paidAt],
  )
  if (updated.length === 0) return false
  await tx.query(
    'insert into parking_payments (ticket_id, lot_id, amount, method, paid_at) values ($1, $2, $3, $4, $5)',
    [payment.ticketId, payment.lotId, payment.amount, payment.method, payment.paidAt],
  )
  return true
}
