import { randomUUID } from 'node:crypto'
import type { Context } from '../context.js'
import type { Queryable } from '../db/database.js'
import {
  findReservationForUpdate,
  findRestaurant,
  findTable,
  insertReservation,
  listReservationsToday,
  listTables,
  type Reservation,
  type Restaurant,
  type RestaurantTable,
  setTableStatus,
  updateReservation,
  upsertRestaurant,
} from '../db/projections/reservations.js'
import { badInput, notFound } from '../errors.js'
import type { ChannelRef } from '../events/channels.js'
import {
  type EventType,
  RESERVATION_STATUSES,
  type ReservationData,
  type ReservationStatus,
  TABLE_STATUSES,
} from '../events/event-map.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, resolveEventType, toEventView } from './event-interface.js'
import { publisherOf, readerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { AFTER_DESCRIPTION, checkCount, idArg, nowIso } from './inputs.js'
import { type FollowOptions, followChannels } from './streams.js'

const reservationsChannel = (restaurantId: string): ChannelRef => ({
  kind: 'restaurantReservations',
  restaurantId,
})
const tablesChannel = (restaurantId: string): ChannelRef => ({
  kind: 'restaurantTables',
  restaurantId,
})

const MAX_CAPACITY = 100

/** Where each status may go next; SEATED and CANCELLED are final. */
const NEXT_STATUSES: Readonly<Record<ReservationStatus, readonly ReservationStatus[]>> = {
  PENDING: ['CONFIRMED', 'CANCELLED'],
  CONFIRMED: ['SEATED', 'CANCELLED'],
  SEATED: [],
  CANCELLED: [],
}

const ReservationStatusEnum = builder.enumType('ReservationStatus', {
  values: RESERVATION_STATUSES,
})
const TableStatusEnum = builder.enumType('TableStatus', { values: TABLE_STATUSES })

const RestaurantTableRef = builder.objectRef<RestaurantTable>('RestaurantTable').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    capacity: t.exposeInt('capacity', { description: 'Seats at the table.' }),
    status: t.expose('status', { type: TableStatusEnum }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
})

const ReservationRef = builder.objectRef<Reservation>('Reservation').implement({
  description: 'The current state of a reservation.',
  fields: (t) => ({
    id: t.exposeID('id'),
    restaurantId: t.exposeID('restaurantId'),
    clientId: t.exposeID('clientId', { nullable: true }),
    clientName: t.exposeString('clientName'),
    tableId: t.exposeID('tableId', { nullable: true }),
    partySize: t.exposeInt('partySize'),
    date: t.expose('date', { type: 'DateTime', description: 'When the table is booked for.' }),
    status: t.expose('status', { type: ReservationStatusEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
})

const RestaurantRef = builder.objectRef<Restaurant>('Restaurant').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    tables: t.field({
      type: [RestaurantTableRef],
      resolve: (restaurant, _args, ctx) => listTables(ctx.services.db, restaurant.id),
    }),
    reservationsToday: t.field({
      type: [ReservationRef],
      description: 'Reservations booked for today (UTC), whatever their status, earliest first.',
      resolve: (restaurant, _args, ctx) => listReservationsToday(ctx.services.db, restaurant.id),
    }),
  }),
})

type ReservationEventType = 'reservation.created' | 'reservation.statusChanged'

// One interface holds the fields both reservation events share, so they cannot drift apart
// in type or nullability (which would break selections across the ReservationEvent union).
const ReservationChange = builder
  .interfaceRef<EventView<ReservationEventType>>('ReservationChange')
  .implement({
    description: 'A reservation event: the reservation as it is after the event.',
    interfaces: [EventInterface],
    fields: (t) => ({
      restaurantId: t.exposeID('restaurantId'),
      reservationId: t.exposeID('reservationId'),
      clientId: t.exposeID('clientId', { nullable: true }),
      clientName: t.exposeString('clientName'),
      tableId: t.exposeID('tableId', { nullable: true }),
      partySize: t.exposeInt('partySize'),
      date: t.expose('date', { type: 'DateTime', description: 'When the table is booked for.' }),
      status: t.expose('status', { type: ReservationStatusEnum }),
      changedAt: t.expose('changedAt', { type: 'DateTime' }),
    }),
  })

const ReservationCreated = builder
  .objectRef<EventView<'reservation.created'>>('ReservationCreated')
  .implement({
    description: 'A reservation was made; it starts PENDING.',
    interfaces: [EventInterface, ReservationChange],
  })

const ReservationStatusChanged = builder
  .objectRef<EventView<'reservation.statusChanged'>>('ReservationStatusChanged')
  .implement({
    description: 'A reservation was confirmed, seated or cancelled.',
    interfaces: [EventInterface, ReservationChange],
    fields: (t) => ({
      previousStatus: t.field({
        type: ReservationStatusEnum,
        resolve: (event) => {
          if (!event.previousStatus) throw new Error('reservation.statusChanged without previous')
          return event.previousStatus
        },
      }),
    }),
  })

const ReservationEvent = builder.unionType('ReservationEvent', {
  description: "A restaurant's reservations being made and changing status, in one stream.",
  types: [ReservationCreated, ReservationStatusChanged],
  resolveType: resolveEventType({
    'reservation.created': 'ReservationCreated',
    'reservation.statusChanged': 'ReservationStatusChanged',
  }),
})

const TableUpdated = builder
  .objectRef<EventView<'restaurant.tableUpdated'>>('TableUpdated')
  .implement({
    description: 'A table changed status.',
    interfaces: [EventInterface],
    fields: (t) => ({
      restaurantId: t.exposeID('restaurantId'),
      tableId: t.exposeID('tableId'),
      capacity: t.exposeInt('capacity'),
      previousStatus: t.expose('previousStatus', { type: TableStatusEnum }),
      status: t.expose('status', { type: TableStatusEnum }),
      changedAt: t.expose('changedAt', { type: 'DateTime' }),
    }),
  })

/** Loads a restaurant; `NOT_FOUND` is asked only after authorization passed. */
export async function requireRestaurant(db: Queryable, restaurantId: string): Promise<Restaurant> {
  const restaurant = await findRestaurant(db, restaurantId)
  if (!restaurant) throw notFound(`restaurant "${restaurantId}"`)
  return restaurant
}

/** Checks `tableId` names a table of the restaurant that seats `partySize`. */
async function checkTable(
  db: Queryable,
  restaurantId: string,
  table: { tableId: string; partySize: number; field: string },
): Promise<void> {
  const { tableId, partySize, field } = table
  const found = await findTable(db, restaurantId, tableId)
  if (!found) throw notFound(`table "${tableId}" in restaurant "${restaurantId}"`)
  if (found.capacity < partySize) {
    throw badInput(field, `table "${tableId}" seats ${found.capacity}, the party is ${partySize}`)
  }
}

/** Authorizes `channel`, checks the restaurant exists, then follows it from `after`. */
export async function followRestaurant<T extends EventType>(
  ctx: Context,
  restaurantId: string,
  channel: ChannelRef,
  options: FollowOptions,
) {
  await readerOf(ctx, [channel])
  await requireRestaurant(ctx.services.db, restaurantId)
  return followChannels<T>(ctx, [channel], options)
}

const toEventData = (
  reservation: Reservation,
  previousStatus: ReservationStatus | null,
  changedAt: string,
): ReservationData => ({
  restaurantId: reservation.restaurantId,
  reservationId: reservation.id,
  clientId: reservation.clientId,
  clientName: reservation.clientName,
  tableId: reservation.tableId,
  partySize: reservation.partySize,
  date: reservation.date,
  status: reservation.status,
  previousStatus,
  changedAt,
})

builder.queryFields((t) => ({
  restaurant: t.field({
    type: RestaurantRef,
    description: "A restaurant with its tables and today's reservations.",
    args: { restaurantId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const restaurantId = idArg('restaurantId', args.restaurantId)
      await readerOf(ctx, [reservationsChannel(restaurantId), tablesChannel(restaurantId)])
      return requireRestaurant(ctx.services.db, restaurantId)
    },
  }),
}))

const RestaurantTableInput = builder.inputType('RestaurantTableInput', {
  fields: (t) => ({
    tableId: t.id({ required: true }),
    capacity: t.int({ required: true, description: `Seats, 1-${MAX_CAPACITY}.` }),
  }),
})

const UpsertRestaurantInput = builder.inputType('UpsertRestaurantInput', {
  fields: (t) => ({
    restaurantId: t.id({ required: true }),
    name: t.string({ required: true }),
    tables: t.field({
      type: [RestaurantTableInput],
      required: true,
      description: 'Tables to add or resize (others are kept).',
    }),
  }),
})

const CreateReservationInput = builder.inputType('CreateReservationInput', {
  fields: (t) => ({
    restaurantId: t.id({ required: true }),
    reservationId: t.id({ description: 'Defaults to a new UUID.' }),
    clientId: t.id(),
    clientName: t.string({ required: true }),
    tableId: t.id(),
    partySize: t.int({ required: true }),
    date: t.field({
      type: 'DateTime',
      required: true,
      description: 'When the table is booked for.',
    }),
  }),
})

const SetReservationStatusInput = builder.inputType('SetReservationStatusInput', {
  fields: (t) => ({
    restaurantId: t.id({ required: true }),
    reservationId: t.id({ required: true }),
    status: t.field({ type: ReservationStatusEnum, required: true }),
    tableId: t.id({
      description: 'Assigns (or moves to) this table; the current one is kept otherwise.',
    }),
  }),
})

const SetTableStatusInput = builder.inputType('SetTableStatusInput', {
  fields: (t) => ({
    restaurantId: t.id({ required: true }),
    tableId: t.id({ required: true }),
    status: t.field({ type: TableStatusEnum, required: true }),
  }),
})

builder.mutationFields((t) => ({
  upsertRestaurant: t.field({
    type: RestaurantRef,
    description: 'Creates a restaurant or renames it, adding or resizing the tables given.',
    args: { input: t.arg({ type: UpsertRestaurantInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const restaurantId = idArg('input.restaurantId', input.restaurantId)
      const name = input.name.trim()
      if (!name) throw badInput('input.name', 'must not be empty')
      const tables = input.tables.map((table, i) => ({
        id: idArg(`input.tables[${i}].tableId`, table.tableId),
        capacity: checkCount(`input.tables[${i}].capacity`, table.capacity, MAX_CAPACITY),
      }))
      return publishOnce(ctx, info, async (scope) => {
        await upsertRestaurant(scope.tx, { id: restaurantId, name, tables })
        return requireRestaurant(scope.tx, restaurantId)
      })
    },
  }),
  createReservation: t.field({
    type: ReservationCreated,
    description: 'Publishes a new PENDING reservation.',
    args: { input: t.arg({ type: CreateReservationInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const restaurantId = idArg('input.restaurantId', input.restaurantId)
      const reservationId = idArg('input.reservationId', input.reservationId ?? randomUUID())
      const clientId = input.clientId == null ? null : idArg('input.clientId', input.clientId)
      const tableId = input.tableId == null ? null : idArg('input.tableId', input.tableId)
      const clientName = input.clientName.trim()
      if (!clientName) throw badInput('input.clientName', 'must not be empty')
      const partySize = checkCount('input.partySize', input.partySize, MAX_CAPACITY)
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireRestaurant(scope.tx, restaurantId)
        if (tableId) {
          await checkTable(scope.tx, restaurantId, { tableId, partySize, field: 'input.partySize' })
        }
        const at = nowIso()
        const reservation: Reservation = {
          restaurantId,
          id: reservationId,
          clientId,
          clientName,
          tableId,
          partySize,
          date: input.date,
          status: 'PENDING',
          createdAt: at,
          updatedAt: at,
        }
        if (!(await insertReservation(scope.tx, reservation))) {
          throw badInput('input.reservationId', `reservation "${reservationId}" already exists`)
        }
        return scope.append(
          reservationsChannel(restaurantId),
          'reservation.created',
          toEventData(reservation, null, at),
        )
      })
      return toEventView(event)
    },
  }),
  setReservationStatus: t.field({
    type: ReservationStatusChanged,
    description:
      'Publishes a status change: PENDING → CONFIRMED → SEATED, or CANCELLED before seating.',
    args: {
      input: t.arg({ type: SetReservationStatusInput, required: true }),
      ...IDEMPOTENCY_ARGS,
    },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const restaurantId = idArg('input.restaurantId', input.restaurantId)
      const reservationId = idArg('input.reservationId', input.reservationId)
      const tableId = input.tableId == null ? null : idArg('input.tableId', input.tableId)
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireRestaurant(scope.tx, restaurantId)
        const current = await findReservationForUpdate(scope.tx, restaurantId, reservationId)
        if (!current) {
          throw notFound(`reservation "${reservationId}" in restaurant "${restaurantId}"`)
        }
        const allowed = NEXT_STATUSES[current.status]
        if (!allowed.includes(input.status)) {
          throw badInput(
            'input.status',
            `cannot go from ${current.status} to ${input.status}; allowed: ${allowed.join(', ') || 'none'}`,
          )
        }
        if (tableId) {
          const { partySize } = current
          await checkTable(scope.tx, restaurantId, { tableId, partySize, field: 'input.tableId' })
        }
        const at = nowIso()
        const next = { ...current, status: input.status, tableId: tableId ?? current.tableId }
        await updateReservation(scope.tx, next, at)
        return scope.append(
          reservationsChannel(restaurantId),
          'reservation.statusChanged',
          toEventData(next, current.status, at),
        )
      })
      return toEventView(event)
    },
  }),
  setTableStatus: t.field({
    type: TableUpdated,
    description: 'Publishes a table status change.',
    args: { input: t.arg({ type: SetTableStatusInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const restaurantId = idArg('input.restaurantId', input.restaurantId)
      const tableId = idArg('input.tableId', input.tableId)
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireRestaurant(scope.tx, restaurantId)
        const at = nowIso()
        const change = { restaurantId, tableId, status: input.status, at }
        const previous = await setTableStatus(scope.tx, change)
        if (!previous) throw notFound(`table "${tableId}" in restaurant "${restaurantId}"`)
        return scope.append(tablesChannel(restaurantId), 'restaurant.tableUpdated', {
          restaurantId,
          tableId,
          capacity: previous.capacity,
          previousStatus: previous.status,
          status: input.status,
          changedAt: at,
        })
      })
      return toEventView(event)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  reservationCreated: t.field({
    type: ReservationCreated,
    description: 'New reservations of a restaurant, resumable with `after`.',
    args: {
      restaurantId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: (_root, args, ctx) => {
      const restaurantId = idArg('restaurantId', args.restaurantId)
      return followRestaurant<'reservation.created'>(
        ctx,
        restaurantId,
        reservationsChannel(restaurantId),
        { after: args.after, types: ['reservation.created'] },
      )
    },
    resolve: (event) => toEventView(event),
  }),
  reservationUpdated: t.field({
    type: ReservationEvent,
    description: 'New reservations and status changes of a restaurant, resumable with `after`.',
    args: {
      restaurantId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: (_root, args, ctx) => {
      const restaurantId = idArg('restaurantId', args.restaurantId)
      return followRestaurant<ReservationEventType>(
        ctx,
        restaurantId,
        reservationsChannel(restaurantId),
        { after: args.after },
      )
    },
    resolve: (event) => toEventView(event),
  }),
  tableUpdated: t.field({
    type: TableUpdated,
    description: 'Table status changes of a restaurant, resumable with `after`.',
    args: {
      restaurantId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: (_root, args, ctx) => {
      const restaurantId = idArg('restaurantId', args.restaurantId)
      return followRestaurant<'restaurant.tableUpdated'>(
        ctx,
        restaurantId,
        tablesChannel(restaurantId),
        { after: args.after },
      )
    },
    resolve: (event) => toEventView(event),
  }),
}))
