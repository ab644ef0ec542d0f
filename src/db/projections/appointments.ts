import type { AppointmentStatus } from '../../events/event-map.js'
import type { Queryable } from '../database.js'
import { toIso } from './sql-values.js'

export interface Business {
  readonly id: string
  readonly name: string
}

export interface Appointment {
  readonly businessId: string
  readonly id: string
  readonly status: AppointmentStatus
  readonly clientId: string | null
  readonly clientName: string
  readonly service: string | null
  readonly startsAt: string
  readonly notes: string | null
  readonly updatedAt: string
}

export interface BusinessStats {
  readonly businessId: string
  /** Every appointment the business has, whatever its status. */
  readonly total: number
  /** Not cancelled, starting between 00:00 UTC today and 00:00 UTC tomorrow. */
  readonly today: number
  readonly scheduled: number
  readonly completed: number
  readonly cancelled: number
}

interface AppointmentRow {
  business_id: string
  id: string
  status: AppointmentStatus
  client_id: string | null
  client_name: string
  service: string | null
  starts_at: Date | string
  notes: string | null
  updated_at: Date | string
}

const toAppointment = (row: AppointmentRow): Appointment => ({
  businessId: row.business_id,
  id: row.id,
  status: row.status,
  clientId: row.client_id,
  clientName: row.client_name,
  service: row.service,
  startsAt: toIso(row.starts_at),
  notes: row.notes,
  updatedAt: toIso(row.updated_at),
})

/** Creates a business or renames it. */
export async function upsertBusiness(tx: Queryable, business: Business): Promise<void> {
  await tx.query(
    `insert into businesses (id, name) values ($1, $2)
     on conflict (id) do update set name = excluded.name`,
    [business.id, business.name],
  )
}

/** The business with `businessId`, or `undefined` when there is none. */
export async function findBusiness(
  db: Queryable,
  businessId: string,
): Promise<Business | undefined> {
  const [row] = await db.query<Business>('select id, name from businesses where id = $1', [
    businessId,
  ])
  return row && { id: row.id, name: row.name }
}

/**
 * One appointment of a business, or `undefined`. Locks the row so concurrent changes to one
 * appointment validate their transition against each other's result.
 */
export async function findAppointmentForUpdate(
  tx: Queryable,
  businessId: string,
  appointmentId: string,
): Promise<Appointment | undefined> {
  const [row] = await tx.query<AppointmentRow>(
    'select * from appointments where business_id = $1 and id = $2 for update',
    [businessId, appointmentId],
  )
  return row && toAppointment(row)
}

/** Writes an appointment's current state: inserts it, or replaces the one with its id. */
export async function saveAppointment(tx: Queryable, appointment: Appointment): Promise<void> {
  await tx.query(
    `insert into appointments
       (business_id, id, status, client_id, client_name, service, starts_at, notes, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     on conflict (business_id, id) do update set status = excluded.status,
       client_id = excluded.client_id, client_name = excluded.client_name,
       service = excluded.service, starts_at = excluded.starts_at, notes = excluded.notes,
       updated_at = excluded.updated_at`,
    [
      appointment.businessId,
      appointment.id,
      appointment.status,
      appointment.clientId,
      appointment.clientName,
      appointment.service,
      appointment.startsAt,
      appointment.notes,
      appointment.updatedAt,
    ],
  )
}

/** Scheduled appointments that have not started yet, soonest first. */
export async function listUpcomingAppointments(
  db: Queryable,
  businessId: string,
  limit: number,
): Promise<Appointment[]> {
  const rows = await db.query<AppointmentRow>(
    `select * from appointments
     where business_id = $1 and status = 'SCHEDULED' and starts_at >= now()
     order by starts_at, id limit $2`,
    [businessId, limit],
  )
  return rows.map(toAppointment)
}

/** Counts a business's appointments by status, and those of today (UTC) not cancelled. */
export async function businessStats(db: Queryable, businessId: string): Promise<BusinessStats> {
  const [row] = await db.query<Record<string, string | number | null>>(
    `with bounds as (
       select date_trunc('day', now() at time zone 'utc') at time zone 'utc' as day_start
     )
     select
       count(*) as total,
       count(*) filter (where status <> 'CANCELLED' and starts_at >= bounds.day_start
         and starts_at < bounds.day_start + interval '1 day') as today,
       count(*) filter (where status = 'SCHEDULED') as scheduled,
       count(*) filter (where status = 'COMPLETED') as completed,
       count(*) filter (where status = 'CANCELLED') as cancelled
     from appointments, bounds where business_id = $1`,
    [businessId],
  )
  return {
    businessId,
    total: Number(row?.['total'] ?? 0),
    today: Number(row?.['today'] ?? 0),
    scheduled: Number(row?.['scheduled'] ?? 0),
    completed: Number(row?.['completed'] ?? 0),
    cancelled: Number(row?.['cancelled'] ?? 0),
  }
}
