import type { TypedDocumentNode } from '@graphql-typed-document-node/core'
import { type ChannelRef, channelName, type Role } from '../../src/events/channels.js'
import {
  CompletePaymentDocument,
  CreateReservationDocument,
  IssueTicketDocument,
  PublishAppointmentDocument,
  PublishDeliveryUpdateDocument,
  PublishInventoryAlertDocument,
  PublishOrderUpdateDocument,
  RaiseParkingAlertDocument,
  SendChatMessageDocument,
  SendNotificationDocument,
  SendRoomMessageDocument,
  SetReservationStatusDocument,
  SetSpaceStateDocument,
  SetTableStatusDocument,
} from '../generated/graphql.js'
import { mustExecute } from './http.js'

/** An event as identified across publish and delivery: position, type and a unique mark. */
export interface Logged {
  readonly channel: string
  readonly seq: number
  /** GraphQL type of the event, e.g. `ParkingAlert`. */
  readonly type: string
  /** What tells it apart (usually unique text the publish put in it), see `markOf`. */
  readonly mark: string
}

/** What identifies an event of `type`, read the same way from a publish and a delivery. */
export function markOf(type: string, event: Record<string, unknown>): string {
  switch (type) {
    case 'ParkingAlert':
      return String(event['message'])
    case 'SpaceStateChanged':
    case 'TicketIssued':
      return String(event['vehiclePlate'])
    case 'PaymentCompleted':
      return String(event['ticketId'])
    case 'AppointmentChanged':
      return String(event['notes'])
    case 'ReservationCreated':
      return String(event['clientName'])
    case 'ReservationStatusChanged':
      return `${event['reservationId']}:${event['status']}`
    case 'TableUpdated':
      return `${event['tableId']}:${event['status']}`
    case 'RestaurantChatMessage':
    case 'RoomMessage':
      return String(event['body'])
    case 'OrderStatusChanged':
      return String(event['trackingNumber'])
    case 'DeliveryUpdated':
      return `${event['orderId']}@${event['latitude']}`
    case 'InventoryAlert':
      return String(event['productName'])
    case 'NotificationSent':
      return String(event['title'])
    default:
      return `unknown type ${type}`
  }
}

/** Who an order is between; fixed for the order's life in a recorded run. */
export interface OrderParties {
  readonly seller: string
  readonly buyer: string
  /** The courier `delivery()` names; null for an order nobody delivers. */
  readonly courier: string | null
}

export interface RecordingPublisherOptions {
  /** `http://…/graphql` of the server. */
  readonly url: string
  /** Service tokens, used in turn so no single token's publish rate is the bottleneck. */
  readonly tokens: readonly string[]
  /** The orders `order()` and `delivery()` publish about. */
  readonly orders: Readonly<Record<string, OrderParties>>
}

const SPACE_CYCLE = ['OCCUPIED', 'RESERVED', 'FREE'] as const
const TABLE_CYCLE = ['OCCUPIED', 'RESERVED', 'AVAILABLE'] as const
const ORDER_CYCLE = ['PAID', 'PROCESSING', 'SHIPPED', 'DELIVERED', 'PENDING'] as const

/** The state after `current` in `cycle`. */
const after = <T>(cycle: readonly T[], current: T): T =>
  cycle[(cycle.indexOf(current) + 1) % cycle.length] ?? current

const parking = (lotId: string) => channelName({ kind: 'lotParking', lotId })

/**
 * Publishes through the publish mutations, one at a time, and records every append in a
 * ledger: channel, seq (gap-free per channel, so known in advance and checked against the
 * publish result where it has one), type and a mark unique to the publish. Keeps the state
 * each publish needs to be valid (tickets to pay, reservations to move on, statuses to cycle).
 * Throws when a publish fails or a returned position disagrees with the ledger.
 */
export function createRecordingPublisher({ url, tokens, orders }: RecordingPublisherOptions) {
  const ledger: Logged[] = []
  const heads = new Map<string, number>()
  let calls = 0
  let counter = 0
  const nextMark = (what: string) => `${what}-${++counter}`
  const unpaidTickets = new Map<string, string[]>()
  const spaces = new Map<string, (typeof SPACE_CYCLE)[number]>()
  const appointments = new Map<string, string[]>()
  const reservations = new Map<string, Array<{ id: string; status: 'PENDING' | 'CONFIRMED' }>>()
  const tables = new Map<string, (typeof TABLE_CYCLE)[number]>()
  const orderSteps = new Map<string, number>()

  const run = <TData, TVariables>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: TVariables,
  ) => mustExecute(url, tokens[calls++ % tokens.length], document, variables)

  function record(
    ref: ChannelRef,
    type: string,
    mark: string,
    returned?: { seq: number; channel?: string },
  ) {
    const name = channelName(ref)
    const seq = (heads.get(name) ?? 0) + 1
    heads.set(name, seq)
    if (returned && (returned.seq !== seq || (returned.channel ?? name) !== name)) {
      throw new Error(
        `${type} ${mark}: expected ${name}#${seq}, the publish said ${returned.channel ?? name}#${returned.seq}`,
      )
    }
    ledger.push({ channel: name, seq, type, mark })
  }

  const partiesOf = (orderId: string) => {
    const parties = orders[orderId]
    if (!parties) throw new Error(`no order ${orderId} among the recorded orders`)
    return parties
  }

  const publisher = {
    /** Every append so far, in publish order. */
    ledger: ledger as readonly Logged[],
    /** The last seq of each channel published on. */
    heads: heads as ReadonlyMap<string, number>,

    async alert(lotId: string) {
      const message = nextMark(`alert-${lotId}`)
      const { raiseParkingAlert } = await run(RaiseParkingAlertDocument, {
        input: { lotId, level: 'INFO', message },
      })
      record({ kind: 'lotParking', lotId }, 'ParkingAlert', message, raiseParkingAlert)
    },

    async ticket(lotId: string) {
      const plate = nextMark(`plate-${lotId}`)
      const { issueTicket } = await run(IssueTicketDocument, {
        input: { lotId, vehiclePlate: plate },
      })
      record({ kind: 'lotParking', lotId }, 'TicketIssued', plate, issueTicket)
      unpaidTickets.set(lotId, [...(unpaidTickets.get(lotId) ?? []), issueTicket.ticketId])
    },

    /** Pays the oldest unpaid ticket of the lot; issues one when there is none. */
    async payment(lotId: string) {
      const ticketId = unpaidTickets.get(lotId)?.shift()
      if (!ticketId) return publisher.ticket(lotId)
      const { completePayment } = await run(CompletePaymentDocument, {
        input: { lotId, ticketId, amount: 4.5, method: 'CARD' },
      })
      record({ kind: 'lotParking', lotId }, 'PaymentCompleted', ticketId, completePayment)
    },

    /** Moves `spaceNumber` on to its next state; keep few spaces taken to avoid automatic alerts. */
    async space(lotId: string, spaceNumber: string) {
      const key = `${lotId}/${spaceNumber}`
      const state = after(SPACE_CYCLE, spaces.get(key) ?? 'FREE')
      spaces.set(key, state)
      const plate = nextMark(`space-${lotId}`)
      const { setSpaceState } = await run(SetSpaceStateDocument, {
        input: { lotId, spaceNumber, state, vehiclePlate: plate },
      })
      if (setSpaceState.channel !== parking(lotId)) throw new Error(`space change not on ${lotId}`)
      record({ kind: 'lotParking', lotId }, 'SpaceStateChanged', plate, setSpaceState)
    },

    /** Updates a scheduled appointment when `pick` is even and there is one, else creates one. */
    async appointment(businessId: string, pick: number) {
      const notes = nextMark(`appointment-${businessId}`)
      const scheduled = appointments.get(businessId) ?? []
      appointments.set(businessId, scheduled)
      const existing = pick % 2 === 0 ? scheduled[pick % Math.max(1, scheduled.length)] : undefined
      const appointmentId = existing ?? `${businessId}-apt-${counter}`
      const { publishAppointment } = await run(PublishAppointmentDocument, {
        input: existing
          ? { businessId, appointmentId, change: 'UPDATED', notes }
          : {
              businessId,
              appointmentId,
              change: 'CREATED',
              clientName: 'Ana',
              startsAt: '2031-05-01T10:00:00.000Z',
              notes,
            },
      })
      if (!existing) scheduled.push(appointmentId)
      record(
        { kind: 'businessAppointments', businessId },
        'AppointmentChanged',
        notes,
        publishAppointment,
      )
    },

    async reservation(restaurantId: string) {
      const clientName = nextMark(`guest-${restaurantId}`)
      const { createReservation } = await run(CreateReservationDocument, {
        input: { restaurantId, clientName, date: '2031-05-01T19:30:00.000Z', partySize: 2 },
      })
      const open = reservations.get(restaurantId) ?? []
      reservations.set(restaurantId, [
        ...open,
        { id: createReservation.reservationId, status: 'PENDING' },
      ])
      record(
        { kind: 'restaurantReservations', restaurantId },
        'ReservationCreated',
        clientName,
        createReservation,
      )
    },

    /** Confirms or seats an open reservation; makes one when there is none. */
    async reservationStatus(restaurantId: string, pick: number) {
      const open = reservations.get(restaurantId) ?? []
      const chosen = open[pick % Math.max(1, open.length)]
      if (!chosen) return publisher.reservation(restaurantId)
      const status = chosen.status === 'PENDING' ? 'CONFIRMED' : 'SEATED'
      const { setReservationStatus } = await run(SetReservationStatusDocument, {
        input: { restaurantId, reservationId: chosen.id, status },
      })
      if (status === 'SEATED') open.splice(open.indexOf(chosen), 1)
      else chosen.status = 'CONFIRMED'
      record(
        { kind: 'restaurantReservations', restaurantId },
        'ReservationStatusChanged',
        `${chosen.id}:${status}`,
        setReservationStatus,
      )
    },

    async table(restaurantId: string, tableId: string) {
      const key = `${restaurantId}/${tableId}`
      const status = after(TABLE_CYCLE, tables.get(key) ?? 'AVAILABLE')
      tables.set(key, status)
      const { setTableStatus } = await run(SetTableStatusDocument, {
        input: { restaurantId, tableId, status },
      })
      record(
        { kind: 'restaurantTables', restaurantId },
        'TableUpdated',
        `${tableId}:${status}`,
        setTableStatus,
      )
    },

    async chat(restaurantId: string, clientId: string) {
      const body = nextMark(`chat-${restaurantId}-${clientId}`)
      const { sendChatMessage } = await run(SendChatMessageDocument, {
        input: { restaurantId, clientId, body },
      })
      record(
        { kind: 'restaurantChat', restaurantId, clientId },
        'RestaurantChatMessage',
        body,
        sendChatMessage,
      )
    },

    /** The order's next status (PENDING first), to the order's and its seller's streams. */
    async order(orderId: string) {
      const parties = partiesOf(orderId)
      const step = orderSteps.get(orderId) ?? -1
      orderSteps.set(orderId, step + 1)
      const status = step < 0 ? 'PENDING' : (ORDER_CYCLE[step % ORDER_CYCLE.length] ?? 'PAID')
      const trackingNumber = nextMark(`tn-${orderId}`)
      const { publishOrderUpdate } = await run(PublishOrderUpdateDocument, {
        input: {
          orderId,
          sellerId: parties.seller,
          buyerId: parties.buyer,
          status,
          trackingNumber,
        },
      })
      record({ kind: 'order', orderId }, 'OrderStatusChanged', trackingNumber, publishOrderUpdate)
      record(
        { kind: 'sellerOrders', sellerId: parties.seller },
        'OrderStatusChanged',
        trackingNumber,
      )
    },

    /** Progress by the order's own courier, to the order's and the courier's streams. */
    async delivery(orderId: string, status: 'ASSIGNED' | 'IN_TRANSIT' = 'IN_TRANSIT') {
      const courierId = partiesOf(orderId).courier
      if (!courierId) throw new Error(`order ${orderId} has no courier`)
      // A latitude of its own tells each delivery update apart.
      const latitude = ++counter / 100
      const { publishDeliveryUpdate } = await run(PublishDeliveryUpdateDocument, {
        input: { orderId, courierId, status, latitude, longitude: 2.35 },
      })
      const mark = `${orderId}@${latitude}`
      record({ kind: 'order', orderId }, 'DeliveryUpdated', mark, publishDeliveryUpdate)
      record({ kind: 'courierDeliveries', courierId }, 'DeliveryUpdated', mark)
    },

    async inventory(sellerId: string) {
      const productName = nextMark(`product-${sellerId}`)
      const { publishInventoryAlert } = await run(PublishInventoryAlertDocument, {
        input: { sellerId, productId: 'P-1', productName, stockLevel: 1, threshold: 5 },
      })
      record(
        { kind: 'sellerInventory', sellerId },
        'InventoryAlert',
        productName,
        publishInventoryAlert,
      )
    },

    async notify(target: { userId: string } | { role: Role } | { everyone: true }) {
      const title = nextMark('note')
      const ref: ChannelRef =
        'userId' in target
          ? { kind: 'userNotifications', userId: target.userId }
          : 'role' in target
            ? { kind: 'roleNotifications', role: target.role }
            : { kind: 'broadcastNotifications' }
      const { sendNotification } = await run(SendNotificationDocument, {
        input: { ...target, title, body: 'hello' },
      })
      record(ref, 'NotificationSent', title, sendNotification)
    },

    async room(room: string) {
      const body = nextMark(`room-${room}`)
      const { sendRoomMessage } = await run(SendRoomMessageDocument, { input: { room, body } })
      record({ kind: 'room', room }, 'RoomMessage', body, sendRoomMessage)
    },
  }
  return publisher
}

export type RecordingPublisher = ReturnType<typeof createRecordingPublisher>
