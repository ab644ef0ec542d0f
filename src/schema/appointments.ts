import type { Queryable } from '../db/database.js'
import {
  type Appointment,
  type Business,
  type BusinessStats,
  businessStats,
  findAppointmentForUpdate,
  findBusiness,
  listUpcomingAppointments,
  saveAppointment,
  upsertBusiness,
} from '../db/projections/appointments.js'
import { badInput, notFound } from '../errors.js'
import type { ChannelRef } from '../events/channels.js'
import {
  APPOINTMENT_CHANGES,
  APPOINTMENT_STATUSES,
  type AppointmentChange,
  type AppointmentStatus,
} from '../events/event-map.js'
import { builder } from './builder.js'
import { EventInterface, type EventView, toEventView } from './event-interface.js'
import { checkId, publisherOf, readerOf } from './guards.js'
import { IDEMPOTENCY_ARGS, publishOnce } from './idempotency.js'
import { AFTER_DESCRIPTION, idArg, trimmedOrNull } from './inputs.js'
import { followChannels, followSnapshot } from './streams.js'

const appointmentsChannel = (businessId: string): ChannelRef => ({
  kind: 'businessAppointments',
  businessId,
})
const statsChannel = (businessId: string): ChannelRef => ({ kind: 'businessStats', businessId })

const MAX_UPCOMING = 500

/** The status each change leads to. COMPLETED and CANCELLED are final: nothing follows them. */
const STATUS_AFTER: Readonly<Record<AppointmentChange, AppointmentStatus>> = {
  CREATED: 'SCHEDULED',
  UPDATED: 'SCHEDULED',
  COMPLETED: 'COMPLETED',
  CANCELLED: 'CANCELLED',
}

const AppointmentStatusEnum = builder.enumType('AppointmentStatus', {
  values: APPOINTMENT_STATUSES,
})
const AppointmentChangeEnum = builder.enumType('AppointmentChange', {
  values: APPOINTMENT_CHANGES,
})

const BusinessStatsRef = builder.objectRef<BusinessStats>('BusinessStats').implement({
  description: 'Live appointment counts for one business.',
  fields: (t) => ({
    businessId: t.exposeID('businessId'),
    total: t.exposeInt('total', { description: 'All appointments, whatever their status.' }),
    today: t.exposeInt('today', {
      description: 'Appointments starting today (UTC) that are not cancelled.',
    }),
    scheduled: t.exposeInt('scheduled', { description: 'Neither completed nor cancelled.' }),
    completed: t.exposeInt('completed'),
    cancelled: t.exposeInt('cancelled'),
  }),
})

const AppointmentRef = builder.objectRef<Appointment>('Appointment').implement({
  description: 'The current state of an appointment.',
  fields: (t) => ({
    id: t.exposeID('id'),
    businessId: t.exposeID('businessId'),
    status: t.expose('status', { type: AppointmentStatusEnum }),
    clientId: t.exposeID('clientId', { nullable: true }),
    clientName: t.exposeString('clientName'),
    service: t.exposeString('service', { nullable: true }),
    startsAt: t.expose('startsAt', { type: 'DateTime' }),
    notes: t.exposeString('notes', { nullable: true }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
})

const BusinessRef = builder.objectRef<Business>('Business').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    stats: t.field({
      type: BusinessStatsRef,
      resolve: (business, _args, ctx) => businessStats(ctx.services.db, business.id),
    }),
    upcomingAppointments: t.field({
      type: [AppointmentRef],
      description: 'Scheduled appointments that have not started yet, soonest first.',
      args: { limit: t.arg.int({ defaultValue: 20, description: `1-${MAX_UPCOMING}.` }) },
      resolve: (business, args, ctx) => {
        const limit = args.limit ?? 20
        if (!(limit >= 1 && limit <= MAX_UPCOMING)) {
          throw badInput('limit', `expected 1 to ${MAX_UPCOMING}, got ${limit}`)
        }
        return listUpcomingAppointments(ctx.services.db, business.id, limit)
      },
    }),
  }),
})

const AppointmentChanged = builder
  .objectRef<EventView<'appointment.changed'>>('AppointmentChanged')
  .implement({
    description: 'An appointment was created, updated, completed or cancelled; its new state.',
    interfaces: [EventInterface],
    fields: (t) => ({
      businessId: t.exposeID('businessId'),
      appointmentId: t.exposeID('appointmentId'),
      change: t.expose('change', { type: AppointmentChangeEnum }),
      status: t.expose('status', { type: AppointmentStatusEnum }),
      clientId: t.exposeID('clientId', { nullable: true }),
      clientName: t.exposeString('clientName'),
      service: t.exposeString('service', { nullable: true }),
      startsAt: t.expose('startsAt', { type: 'DateTime' }),
      notes: t.exposeString('notes', { nullable: true }),
      changedAt: t.expose('changedAt', { type: 'DateTime' }),
    }),
  })

/** Loads a business; `NOT_FOUND` is asked only after authorization passed. */
async function requireBusiness(db: Queryable, businessId: string): Promise<Business> {
  const business = await findBusiness(db, businessId)
  if (!business) throw notFound(`business "${businessId}"`)
  return business
}

builder.queryFields((t) => ({
  business: t.field({
    type: BusinessRef,
    description: 'A business with its live stats and upcoming appointments.',
    args: { businessId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const businessId = idArg('businessId', args.businessId)
      await readerOf(ctx, [appointmentsChannel(businessId)])
      return requireBusiness(ctx.services.db, businessId)
    },
  }),
  businessStats: t.field({
    type: BusinessStatsRef,
    description: 'Current appointment counts of a business.',
    args: { businessId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const businessId = idArg('businessId', args.businessId)
      await readerOf(ctx, [statsChannel(businessId)])
      await requireBusiness(ctx.services.db, businessId)
      return businessStats(ctx.services.db, businessId)
    },
  }),
}))

const UpsertBusinessInput = builder.inputType('UpsertBusinessInput', {
  fields: (t) => ({
    businessId: t.id({ required: true }),
    name: t.string({ required: true }),
  }),
})

const PublishAppointmentInput = builder.inputType('PublishAppointmentInput', {
  description:
    'An appointment change. Omitted or null fields keep their current value; CREATED needs clientName and startsAt.',
  fields: (t) => ({
    businessId: t.id({ required: true }),
    appointmentId: t.id({ required: true }),
    change: t.field({ type: AppointmentChangeEnum, required: true }),
    clientId: t.id(),
    clientName: t.string(),
    service: t.string(),
    startsAt: t.field({ type: 'DateTime' }),
    notes: t.string(),
  }),
})

builder.mutationFields((t) => ({
  upsertBusiness: t.field({
    type: BusinessRef,
    description: 'Creates a business or renames it.',
    args: { input: t.arg({ type: UpsertBusinessInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const businessId = idArg('input.businessId', input.businessId)
      const name = input.name.trim()
      if (!name) throw badInput('input.name', 'must not be empty')
      return publishOnce(ctx, info, async (scope) => {
        await upsertBusiness(scope.tx, { id: businessId, name })
        return requireBusiness(scope.tx, businessId)
      })
    },
  }),
  publishAppointment: t.field({
    type: AppointmentChanged,
    description:
      'Publishes an appointment change: CREATED, then UPDATED any number of times, then COMPLETED or CANCELLED.',
    args: { input: t.arg({ type: PublishAppointmentInput, required: true }), ...IDEMPOTENCY_ARGS },
    resolve: async (_root, { input }, ctx, info) => {
      publisherOf(ctx)
      const businessId = idArg('input.businessId', input.businessId)
      const appointmentId = idArg('input.appointmentId', input.appointmentId)
      const clientId = input.clientId == null ? null : checkId('input.clientId', input.clientId)
      const clientName = trimmedOrNull(input.clientName)
      if (input.clientName != null && !clientName) {
        throw badInput('input.clientName', 'must not be empty')
      }
      const { change } = input
      const event = await publishOnce(ctx, info, async (scope) => {
        await requireBusiness(scope.tx, businessId)
        const current = await findAppointmentForUpdate(scope.tx, businessId, appointmentId)
        if (change === 'CREATED' && current) {
          throw badInput('input.appointmentId', `appointment "${appointmentId}" already exists`)
        }
        if (change !== 'CREATED' && !current) {
          throw notFound(`appointment "${appointmentId}" in business "${businessId}"`)
        }
        if (current && current.status !== 'SCHEDULED') {
          throw badInput(
            'input.change',
            `appointment "${appointmentId}" is ${current.status}; only a SCHEDULED one can be ${change}`,
          )
        }
        const name = clientName ?? current?.clientName
        if (!name) throw badInput('input.clientName', `required when change is ${change}`)
        const startsAt = input.startsAt ?? current?.startsAt
        if (!startsAt) throw badInput('input.startsAt', `required when change is ${change}`)
        const changedAt = new Date().toISOString()
        const next: Appointment = {
          businessId,
          id: appointmentId,
          status: STATUS_AFTER[change],
          clientId: clientId ?? current?.clientId ?? null,
          clientName: name,
          service: trimmedOrNull(input.service) ?? current?.service ?? null,
          startsAt,
          notes: trimmedOrNull(input.notes) ?? current?.notes ?? null,
          updatedAt: changedAt,
        }
        await saveAppointment(scope.tx, next)
        scope.signal(statsChannel(businessId))
        return scope.append(appointmentsChannel(businessId), 'appointment.changed', {
          businessId,
          appointmentId,
          change,
          status: next.status,
          clientId: next.clientId,
          clientName: next.clientName,
          service: next.service,
          startsAt: next.startsAt,
          notes: next.notes,
          changedAt,
        })
      })
      return toEventView(event)
    },
  }),
}))

builder.subscriptionFields((t) => ({
  appointmentChanged: t.field({
    type: AppointmentChanged,
    description: "Every change to a business's appointments, resumable with `after`.",
    args: {
      businessId: t.arg.id({ required: true }),
      after: t.arg.string({ description: AFTER_DESCRIPTION }),
    },
    subscribe: async (_root, args, ctx) => {
      const businessId = idArg('businessId', args.businessId)
      await readerOf(ctx, [appointmentsChannel(businessId)])
      await requireBusiness(ctx.services.db, businessId)
      return followChannels<'appointment.changed'>(ctx, [appointmentsChannel(businessId)], {
        after: args.after,
      })
    },
    resolve: (event) => toEventView(event),
  }),
  businessStatsUpdated: t.field({
    type: BusinessStatsRef,
    description: `The business's stats now, then after each change (coalesced to one message per interval).`,
    args: { businessId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx) => {
      const businessId = idArg('businessId', args.businessId)
      await readerOf(ctx, [statsChannel(businessId)])
      await requireBusiness(ctx.services.db, businessId)
      return followSnapshot(ctx, statsChannel(businessId), () =>
        businessStats(ctx.services.db, businessId),
      )
    },
    resolve: (stats) => stats,
  }),
}))
