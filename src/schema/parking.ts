import { randomUUID } from 'node:crypto'
import {
  findLot,
  insertTicket,
  type LotStats,
  listSpaces,
  lotOccupancy,
  lotStats,
  recordPayment,
  setOccupancyAlert,
  setSpaceState,
  upsertLot,
} from '../db/projections/parking.js'
import { badInput, notFound } from '../errors.js'
import type { ChannelRef } from '../events/channels.js'
import { ALERT_LEVELS, PAYMENT_METHODS, SPACE_STATES } from '../events/event-map.js'
import type { PublishScope } from '../events/publisher.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, resolveEventType, toEventView } from './event-interface.js'
import { checkId, publisherOf, readerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { AFTER_DESCRIPTION, idArg, nowIso, trimmedOrNull } from './inputs.js'
import { followChannels, followSnapshot } from './streams.js'

const parkingChannel = (lotId: string): ChannelRef => ({ kind: 'lotParking', lotId })
const statsChannel = (lotId: string): ChannelRef => ({ kind: 'lotStats', lotId })

const SpaceStateEnum = builder.enumType('SpaceState', { values: SPACE_STATES })
const AlertLevelEnum = builder.enumType('AlertLevel', { values: ALERT_LEVELS })
const PaymentMethodEnum = builder.enumType('PaymentMethod', { values: PAYMENT_METHODS })

const LotStatsRef = builder.objectRef<LotStats>('LotStats').implement({
  description: 'Live counts for one parking lot.',
  fields: (t) => ({
    lotId: t.exposeID('lotId'),
    totalSpaces: t.exposeInt('totalSpaces'),
    freeSpaces: t.exposeInt('freeSpaces'),
    occupiedSpaces: t.exposeInt('occupiedSpaces'),
    reservedSpaces: t.exposeInt('reservedSpaces'),
    outOfServiceSpaces: t.exposeInt('outOfServiceSpaces'),
    occupancyRate: t.exposeFloat('occupancyRate', {
      description: 'Occupied share of all spaces, 0 to 1.',
    }),
    revenueToday: t.exposeFloat('revenueToday', { description: 'Payments since 00:00 UTC today.' }),
  }),
})

const ParkingSpaceRef = builder
  .objectRef<Awaited<ReturnType<typeof listSpaces>>[number]>('ParkingSpace')
  .implement({
    fields: (t) => ({
      number: t.exposeString('number', { description: 'Space label, e.g. A-15.' }),
      state: t.expose('state', { type: SpaceStateEnum }),
      vehiclePlate: t.exposeString('vehiclePlate', { nullable: true }),
      customerName: t.exposeString('customerName', { nullable: true }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    }),
  })

const LotRef = builder
  .objectRef<NonNullable<Awaited<ReturnType<typeof findLot>>>>('Lot')
  .implement({
    fields: (t) => ({
      id: t.exposeID('id'),
      name: t.exposeString('name'),
      alertThreshold: t.exposeFloat('alertThreshold', {
        description: 'Occupancy (0 to 1) at which the gateway raises an automatic alert.',
      }),
      stats: t.field({
        type: LotStatsRef,
        resolve: (lot, _args, ctx) => lotStats(ctx.services.db, lot.id),
      }),
      spaces: t.field({
        type: [ParkingSpaceRef],
        resolve: (lot, _args, ctx) => listSpaces(ctx.services.db, lot.id),
      }),
    }),
  })

const SpaceStateChanged = builder
  .objectRef<EventView<'parking.spaceChanged'>>('SpaceStateChanged')
  .implement({
    description: 'A parking space changed state.',
    interfaces: [EventInterface],
    fields: (t) => ({
      lotId: t.exposeID('lotId'),
      spaceNumber: t.exposeString('spaceNumber'),
      previousState: t.expose('previousState', { type: SpaceStateEnum }),
      state: t.expose('state', { type: SpaceStateEnum }),
      changedAt: t.expose('changedAt', { type: 'DateTime' }),
      vehiclePlate: t.exposeString('vehiclePlate', { nullable: true }),
      customerName: t.exposeString('customerName', { nullable: true }),
    }),
  })

const TicketIssued = builder
  .objectRef<EventView<'parking.ticketIssued'>>('TicketIssued')
  .implement({
    description: 'A parking ticket was issued at entry.',
    interfaces: [EventInterface],
    fields: (t) => ({
      lotId: t.exposeID('lotId'),
      ticketId: t.exposeID('ticketId'),
      // Nullable in the schema only so it merges with SpaceStateChanged.vehiclePlate in one
      // ParkingEvent selection; a ticket always has a plate.
      vehiclePlate: t.exposeString('vehiclePlate', { nullable: true }),
      assignedSpace: t.exposeString('spaceNumber', {
        nullable: true,
        description: 'Space given at entry, if any.',
      }),
      entryAt: t.expose('entryAt', { type: 'DateTime' }),
      customerName: t.exposeString('customerName', { nullable: true }),
    }),
  })

const PaymentCompleted = builder
  .objectRef<EventView<'parking.paymentCompleted'>>('PaymentCompleted')
  .implement({
    description: 'A ticket was paid.',
    interfaces: [EventInterface],
    fields: (t) => ({
      lotId: t.exposeID('lotId'),
      ticketId: t.exposeID('ticketId'),
      amount: t.exposeFloat('amount'),
      method: t.expose('method', { type: PaymentMethodEnum }),
      paidAt: t.expose('paidAt', { type: 'DateTime' }),
    }),
  })

const ParkingAlert = builder.objectRef<EventView<'parking.alert'>>('ParkingAlert').implement({
  description: 'A system alert for a lot, raised by a backend or by the gateway itself.',
  interfaces: [EventInterface],
  fields: (t) => ({
    lotId: t.exposeID('lotId'),
    level: t.expose('level', { type: AlertLevelEnum }),
    message: t.exposeString('message'),
    raisedAt: t.expose('raisedAt', { type: 'DateTime' }),
    actionRequired: t.exposeBoolean('actionRequired'),
    automatic: t.exposeBoolean('automatic', {
      description: 'True when the gateway raised it because occupancy crossed the threshold.',
    }),
  }),
})

type ParkingEventType =
  | 'parking.spaceChanged'
  | 'parking.ticketIssued'
  | 'parking.paymentCompleted'
  | 'parking.alert'

const ParkingEvent = builder.unionType('ParkingEvent', {
  description: 'Everything that happens in a lot, in one ordered stream.',
  types: [SpaceStateChanged, TicketIssued, PaymentCompleted, ParkingAlert],
  resolveType: resolveEventType({
    'parking.spaceChanged': 'SpaceStateChanged',
    'parking.ticketIssued': 'TicketIssued',
    'parking.paymentCompleted': 'PaymentCompleted',
    'parking.alert': 'ParkingAlert',
  }),
})

/** Loads a lot the viewer may read; `NOT_FOUND` only after authorization passed. */
async function requireLot(scope: { tx: import('../db/database.js').Queryable }, lotId: string) {
  const lot = await findLot(scope.tx, lotId)
  if (!lot) throw notFound(`lot "${lotId}"`)
  return lot
}

/**
 * Raises the automatic occupancy alert when occupancy crosses the lot's threshold upwards,
 * and an all-clear when it falls back below: once per crossing, in the publish transaction.
 */
async function checkOccupancy(scope: PublishScope, lotId: string, at: string): Promise<void> {
  // Read after this transaction's append: appends to one channel run one at a time, so a
  // concurrent publish's alert flag is seen here and the alert fires once per crossing.
  const lot = await lotOccupancy(scope.tx, lotId)
  if (!lot) throw notFound(`lot "${lotId}"`)
  const above = lot.totalSpaces > 0 && lot.occupancyRate >= lot.alertThreshold
  if (above === lot.occupancyAlertActive) return
  await setOccupancyAlert(scope.tx, lotId, above)
  const percent = Math.round(lot.occupancyRate * 100)
  const counts = `${lot.occupiedSpaces}/${lot.totalSpaces} spaces occupied`
  await scope.append(parkingChannel(lotId), 'parking.alert', {
    lotId,
    level: above ? (lot.freeSpaces === 0 ? 'CRITICAL' : 'WARNING') : 'INFO',
    message: above
      ? `Occupancy at ${percent}% (${counts}), at or above the ${Math.round(lot.alertThreshold * 100)}% threshold`
      : `Occupancy back to ${percent}% (${counts})`,
    raisedAt: at,
    actionRequired: above,
    automatic: true,
  })
}

builder.queryFields((t) => ({
  lot: t.field({
    type: LotRef,
    description: 'A parking lot with its spaces and live stats.',
    args: { lotId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const lotId = idArg('lotId', args.lotId)
      await readerOf(ctx, [parkingChannel(lotId)])
      return requireLot({ tx: ctx.services.db }, lotId)
    },
  }),
  lotStats: t.field({
    type: LotStatsRef,
    description: 'Current counts and revenue of a lot.',
    args: { lotId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const lotId = idArg('lotId', args.lotId)
      await readerOf(ctx, [statsChannel(lotId)])
      await requireLot({ tx: ctx.services.db }, lotId)
      return lotStats(ctx.services.db, lotId)
    },
  }),
}))

const UpsertLotInput = builder.inputType('UpsertLotInput', {
  fields: (t) => ({
    lotId: t.id({ required: true }),
    name: t.string({ required: true }),
    spaces: t.stringList({
      required: true,
      description: 'Space labels to add (existing ones are kept).',
    }),
    alertThreshold: t.float({
      description: 'Occupancy 0-1 that raises the automatic alert (default 0.95).',
    }),
  }),
})

const SetSpaceStateInput = builder.inputType('SetSpaceStateInput', {
  fields: (t) => ({
    lotId: t.id({ required: true }),
    spaceNumber: t.string({ required: true }),
    state: t.field({ type: SpaceStateEnum, required: true }),
    vehiclePlate: t.string(),
    customerName: t.string(),
  }),
})

const IssueTicketInput = builder.inputType('IssueTicketInput', {
  fields: (t) => ({
    lotId: t.id({ required: true }),
    ticketId: t.id({ description: 'Defaults to a new UUID.' }),
    vehiclePlate: t.string({ required: true }),
    spaceNumber: t.string(),
    customerName: t.string(),
    entryAt: t.field({ type: 'DateTime', description: 'Defaults to now.' }),
  }),
})

const CompletePaymentInput = builder.inputType('CompletePaymentInput', {
  fields: (t) => ({
    lotId: t.id({ required: true }),
    ticketId: t.id({ required: true }),
    amount: t.float({ required: true }),
    method: t.field({ type: PaymentMethodEnum, required: true }),
    paidAt: t.field({ type: 'DateTime', description: 'Defaults to now.' }),
  }),
})

const RaiseParkingAlertInput = builder.inputType('RaiseParkingAlertInput', {
  fields: (t) => ({
    lotId: t.id({ required: true }),
    level: t.field({ type: AlertLevelEnum, required: true }),
    message: t.string({ required: true }),
    actionRequired: t.boolean({ defaultValue: false }),
  }),
})

builder.mutationFields((t) => ({
  upsertLot: t.field({
    type: LotRef,
    description: 'Creates a lot or updates its name and threshold, adding any new spaces.',
    args: { input: t.arg({ type: UpsertLotInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const lotId = idArg('input.lotId', input.lotId)
      const threshold = input.alertThreshold ?? null
      if (threshold !== null && !(threshold > 0 && threshold <= 1)) {
        throw badInput('input.alertThreshold', `expected a number in (0, 1], got ${threshold}`)
      }
      if (!input.name.trim()) throw badInput('input.name', 'must not be empty')
      const spaces = input.spaces.map((space, i) => checkId(`input.spaces[${i}]`, space))
      return publishOnce(ctx, info, async (scope) => {
        await upsertLot(scope.tx, {
          id: lotId,
          name: input.name.trim(),
          alertThreshold: threshold,
          spaces,
        })
        scope.signal(statsChannel(lotId))
        await checkOccupancy(scope, lotId, nowIso())
        return requireLot(scope, lotId)
      })
    },
  }),
  setSpaceState: t.field({
    type: SpaceStateChanged,
    description: 'Publishes a space state change (and the automatic occupancy alert when crossed).',
    args: { input: t.arg({ type: SetSpaceStateInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const lotId = idArg('input.lotId', input.lotId)
      const at = nowIso()
      const event = await publishOnce(ctx, info, async (scope) => {
        const change = {
          lotId,
          number: input.spaceNumber,
          state: input.state,
          vehiclePlate: trimmedOrNull(input.vehiclePlate),
          customerName: trimmedOrNull(input.customerName),
          at,
        }
        const previousState = await setSpaceState(scope.tx, change)
        if (!previousState) {
          // No such space: say whether the lot itself is missing. Only a refused change pays
          // for the lookup.
          await requireLot(scope, lotId)
          throw notFound(`space "${input.spaceNumber}" in lot "${lotId}"`)
        }
        const appended = await scope.append(parkingChannel(lotId), 'parking.spaceChanged', {
          lotId,
          spaceNumber: change.number,
          previousState,
          state: change.state,
          changedAt: at,
          vehiclePlate: change.vehiclePlate,
          customerName: change.customerName,
        })
        scope.signal(statsChannel(lotId))
        await checkOccupancy(scope, lotId, at)
        return appended
      })
      return toEventView(event)
    },
  }),
  issueTicket: t.field({
    type: TicketIssued,
    description: 'Publishes a ticket issued at entry.',
    args: { input: t.arg({ type: IssueTicketInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const lotId = idArg('input.lotId', input.lotId)
      const ticketId = checkId(
        'input.ticketId',
        input.ticketId ? String(input.ticketId) : randomUUID(),
      )
      if (!input.vehiclePlate.trim()) throw badInput('input.vehiclePlate', 'must not be empty')
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireLot(scope, lotId)
        const ticket = {
          id: ticketId,
          lotId,
          vehiclePlate: input.vehiclePlate.trim(),
          spaceNumber: trimmedOrNull(input.spaceNumber),
          customerName: trimmedOrNull(input.customerName),
          entryAt: input.entryAt ?? nowIso(),
        }
        if (!(await insertTicket(scope.tx, ticket))) {
          throw badInput('input.ticketId', `ticket "${ticketId}" already exists`)
        }
        return scope.append(parkingChannel(lotId), 'parking.ticketIssued', {
          lotId,
          ticketId,
          vehiclePlate: ticket.vehiclePlate,
          spaceNumber: ticket.spaceNumber,
          entryAt: ticket.entryAt,
          customerName: ticket.customerName,
        })
      })
      return toEventView(event)
    },
  }),
  completePayment: t.field({
    type: PaymentCompleted,
    description: "Publishes a ticket's payment; it counts towards today's revenue.",
    args: { input: t.arg({ type: CompletePaymentInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const lotId = idArg('input.lotId', input.lotId)
      const ticketId = idArg('input.ticketId', input.ticketId)
      if (!(Number.isFinite(input.amount) && input.amount >= 0)) {
        throw badInput('input.amount', `expected a non-negative amount, got ${input.amount}`)
      }
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireLot(scope, lotId)
        const payment = {
          lotId,
          ticketId,
          amount: input.amount,
          method: input.method,
          paidAt: input.paidAt ?? nowIso(),
        }
        if (!(await recordPayment(scope.tx, payment)))
          throw notFound(`ticket "${ticketId}" in lot "${lotId}"`)
        scope.signal(statsChannel(lotId))
        return scope.append(parkingChannel(lotId), 'parking.paymentCompleted', payment)
      })
      return toEventView(event)
    },
  }),
  raiseParkingAlert: t.field({
    type: ParkingAlert,
    description: 'Publishes a system alert for a lot.',
    args: { input: t.arg({ type: RaiseParkingAlertInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const lotId = idArg('input.lotId', input.lotId)
      if (!input.message.trim()) throw badInput('input.message', 'must not be empty')
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireLot(scope, lotId)
        return scope.append(parkingChannel(lotId), 'parking.alert', {
          lotId,
          level: input.level,
          message: input.message.trim(),
          raisedAt: nowIso(),
          actionRequired: input.actionRequired ?? false,
          automatic: false,
        })
      })
      return toEventView(event)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  parkingUpdated: t.field({
    type: ParkingEvent,
    description: 'Space changes, tickets, payments and alerts of a lot, resumable with `after`.',
    args: {
      lotId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: async (_root, args, ctx) => {
      const lotId = idArg('lotId', args.lotId)
      await readerOf(ctx, [parkingChannel(lotId)])
      await requireLot({ tx: ctx.services.db }, lotId)
      return followChannels<ParkingEventType>(ctx, [parkingChannel(lotId)], { after: args.after })
    },
    resolve: (event) => toEventView(event),
  }),
  statsUpdated: t.field({
    type: LotStatsRef,
    description: `The lot's stats now, then after each change (coalesced to one message per interval).`,
    args: { lotId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx) => {
      const lotId = idArg('lotId', args.lotId)
      await readerOf(ctx, [statsChannel(lotId)])
      await requireLot({ tx: ctx.services.db }, lotId)
      return followSnapshot(ctx, statsChannel(lotId), () => lotStats(ctx.services.db, lotId))
    },
    resolve: (stats) => stats,
  }),
}))
