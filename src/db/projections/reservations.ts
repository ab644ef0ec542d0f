import type { ReservationStatus, TableStatus } from '../../events/event-map.js'
import type { Queryable } from '../database.js'
import { toIso } from './sql-values.js'

export interface Restaurant {
  readonly id: string
  readonly name: string
}

export interface RestaurantTable {
  readonly restaurantId: string
  readonly id: string
  readonly capacity: number
  readonly status: TableStatus
  readonly updatedAt: string
}

export interface Reservation {
  readonly restaurantId: string
  readonly id: string
  readonly clientId: string | null
  readonly clientName: string
  readonly tableId: string | null
  readonly partySize: number
  /** When the table is booked for. */
  readonly date: string
  readonly status: ReservationStatus
  readonly createdAt: string
  readonly updatedAt: string
}

/** Creates or renames a restaurant, adds its new tables and sets the capacity of all given. */
export async function upsertRestaurant(
  tx: Queryable,
  restaurant: {
    id: string
    name: string
    tables: ReadonlyArray<{ id: string; capacity: number }>
  },
): Promise<void> {
  await tx.query(
    `insert into restaurants (id, name) values ($1, $2)
     on conflict (id) do update set name = excluded.name`,
    [restaurant.id, restaurant.name],
  )
  if (restaurant.tables.length === 0) return
  await tx.query(
    `insert into restaurant_tables (restaurant_id, id, capacity)
     select $1, t.id, t.capacity from unnest($2::text[], $3::int[]) as t (id, capacity)
     on conflict (restaurant_id, id) do update set capacity = excluded.capacity`,
    [
      restaurant.id,
      restaurant.tables.map((table) => table.id),
      restaurant.tables.map((table) => table.capacity),
    ],
  )
}

/** The restaurant with `restaurantId`, or `undefined` when there is none. */
export async function findRestaurant(
  db: Queryable,
  restaurantId: string,
): Promise<Restaurant | undefined> {
  const [row] = await db.query<Restaurant>('select id, name from restaurants where id = $1', [
    restaurantId,
  ])
  return row && { id: row.id, name: row.name }
}

interface TableRow {
  restaurant_id: string
  id: string
  capacity: number
  status: TableStatus
  updated_at: Date | string
}

const toTable = (row: TableRow): RestaurantTable => ({
  restaurantId: row.restaurant_id,
  id: row.id,
  capacity: Number(row.capacity),
  status: row.status,
  updatedAt: toIso(row.updated_at),
})

/** A restaurant's tables, by id. */
export async function listTables(db: Queryable, restaurantId: string): Promise<RestaurantTable[]> {
  const rows = await db.query<TableRow>(
    'select * from restaurant_tables where restaurant_id = $1 order by id',
    [restaurantId],
  )
  return rows.map(toTable)
}

/** One table, or `undefined` when the restaurant has no table with that id. */
export async function findTable(
  db: Queryable,
  restaurantId: string,
  tableId: string,
): Promise<RestaurantTable | undefined> {
  const [row] = await db.query<TableRow>(
    'select * from restaurant_tables where restaurant_id = $1 and id = $2',
    [restaurantId, tableId],
  )
  return row && toTable(row)
}

/**
 * Sets a table's status and returns the table as it was, or `undefined` when it does not
 * exist. Locks the row so concurrent changes to one table see each other's previous status.
 */
export async function setTableStatus(
  tx: Queryable,
  change: { restaurantId: string; tableId: string; status: TableStatus; at: string },
): Promise<RestaurantTable | undefined> {
  const [row] = await tx.query<TableRow>(
    'select * from restaurant_tables where restaurant_id = $1 and id = $2 for update',
    [change.restaurantId, change.tableId],
  )
  if (!row) return undefined
  await tx.query(
    'update restaurant_tables set status = $3, updated_at = $4 where restaurant_id = $1 and id = $2',
    [change.restaurantId, change.tableId, change.status, change.at],
  )
  return toTable(row)
}

interface ReservationRow {
  restaurant_id: string
  id: string
  client_id: string | null
  client_name: string
  table_id: string | null
  party_size: number
  reserved_for: Date | string
  status: ReservationStatus
  created_at: Date | string
  updated_at: Date | string
}

const toReservation = (row: ReservationRow): Reservation => ({
  restaurantId: row.restaurant_id,
  id: row.id,
  clientId: row.client_id,
  clientName: row.client_name,
  tableId: row.table_id,
  partySize: Number(row.party_size),
  date: toIso(row.reserved_for),
  status: row.status,
  createdAt: toIso(row.created_at),
  updatedAt: toIso(row.updated_at),
})

/** Inserts a new reservation; false when the restaurant already has one with its id. */
export async function insertReservation(tx: Queryable, reservation: Reservation): Promise<boolean> {
  const rows = await tx.query(
    `insert into reservations (restaurant_id, id, client_id, client_name, table_id, party_size,
       reserved_for, status, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing returning id`,
    [
      reservation.restaurantId,
      reservation.id,
      reservation.clientId,
      reservation.clientName,
      reservation.tableId,
      reservation.partySize,
      reservation.date,
      reservation.status,
      reservation.createdAt,
      reservation.updatedAt,
    ],
  )
  return rows.length > 0
}

/** One reservation, locked until the transaction ends; `undefined` when there is none. */
export async function findReservationForUpdate(
  tx: Queryable,
  restaurantId: string,
  reservationId: string,
): Promise<Reservation | undefined> {
  const [row] = await tx.query<ReservationRow>(
    'select * from reservations where restaurant_id = $1 and id = $2 for update',
    [restaurantId, reservationId],
  )
  return row && toReservation(row)
}

/** Sets a reservation's status and table. */
export async function updateReservation(
  tx: Queryable,
  change: { restaurantId: string; id: string; status: ReservationStatus; tableId: string | null },
  at: string,
): Promise<void> {
  await tx.query(
    `update reservations set status = $3, table_id = $4, updated_at = $5
     where restaurant_id = $1 and id = $2`,
    [change.restaurantId, change.id, change.status, change.tableId, at],
  )
}

/** Reservations booked for today (UTC), whatever their status, earliest first. */
export async function listReservationsToday(
  db: Queryable,
  restaurantId: string,
): Promise<Reservation[]> {
  const rows = await db.query<ReservationRow>(
    `with bounds as (
       select date_trunc('day', now() at time zone 'utc') at time zone 'utc' as day_start
     )
     select reservations.* from reservations, bounds
     where restaurant_id = $1 and reserved_for >= bounds.day_start
       and reserved_for < bounds.day_start + interval '1 day'
     order by reserved_for, id`,
    [restaurantId],
  )
  return rows.map(toReservation)
}
