/**
 * The typed event map: every event type Switchboard logs, with the shape of its `data`.
 * Publishers and subscription resolvers both type against it, so a field added here is a
 * compile error wherever it is not handled.
 */

export const SPACE_STATES = ['FREE', 'OCCUPIED', 'RESERVED', 'OUT_OF_SERVICE'] as const
export type SpaceState = (typeof SPACE_STATES)[number]

export const ALERT_LEVELS = ['INFO', 'WARNING', 'CRITICAL'] as const
export type AlertLevel = (typeof ALERT_LEVELS)[number]

export const PAYMENT_METHODS = ['CARD', 'CASH', 'MOBILE', 'OTHER'] as const
export type PaymentMethod = (typeof PAYMENT_METHODS)[number]

export const APPOINTMENT_STATUSES = ['SCHEDULED', 'COMPLETED', 'CANCELLED'] as const
export type AppointmentStatus = (typeof APPOINTMENT_STATUSES)[number]

export const APPOINTMENT_CHANGES = ['CREATED', 'UPDATED', 'COMPLETED', 'CANCELLED'] as const
export type AppointmentChange = (typeof APPOINTMENT_CHANGES)[number]

export const RESERVATION_STATUSES = ['PENDING', 'CONFIRMED', 'SEATED', 'CANCELLED'] as const
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number]

export const TABLE_STATUSES = ['AVAILABLE', 'RESERVED', 'OCCUPIED', 'OUT_OF_SERVICE'] as const
export type TableStatus = (typeof TABLE_STATUSES)[number]

export const ORDER_STATUSES = [
  'PENDING',
  'PAID',
  'PROCESSING',
  'SHIPPED',
  'DELIVERED',
  'CANCELLED',
  'RETURNED',
] as const
export type OrderStatus = (typeof ORDER_STATUSES)[number]

export const DELIVERY_STATUSES = [
  'ASSIGNED',
  'PICKED_UP',
  'IN_TRANSIT',
  'DELIVERED',
  'FAILED',
] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

export const NOTIFICATION_AUDIENCES = ['USER', 'ROLE', 'EVERYONE'] as const
export type NotificationAudience = (typeof NOTIFICATION_AUDIENCES)[number]

/** JSON values carried opaquely (`meta`, notification `data`). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface SpaceChangedData {
  lotId: string
  spaceNumber: string
  previousState: SpaceState
  state: SpaceState
  changedAt: string
  vehiclePlate: string | null
  customerName: string | null
}

export interface TicketIssuedData {
  lotId: string
  ticketId: string
  vehiclePlate: string
  spaceNumber: string | null
  entryAt: string
  customerName: string | null
}

export interface PaymentCompletedData {
  lotId: string
  ticketId: string
  amount: number
  method: PaymentMethod
  paidAt: string
}

export interface ParkingAlertData {
  lotId: string
  level: AlertLevel
  message: string
  raisedAt: string
  actionRequired: boolean
  /** True for alerts the gateway raised itself (occupancy threshold). */
  automatic: boolean
}

export interface AppointmentData {
  businessId: string
  appointmentId: string
  change: AppointmentChange
  status: AppointmentStatus
  clientId: string | null
  clientName: string
  service: string | null
  startsAt: string
  notes: string | null
  changedAt: string
}

export interface ReservationData {
  restaurantId: string
  reservationId: string
  clientId: string | null
  clientName: string
  tableId: string | null
  partySize: number
  date: string
  status: ReservationStatus
  previousStatus: ReservationStatus | null
  changedAt: string
}

export interface TableData {
  restaurantId: string
  tableId: string
  capacity: number
  previousStatus: TableStatus
  status: TableStatus
  changedAt: string
}

export interface ChatMessageData {
  restaurantId: string
  clientId: string
  messageId: string
  fromUserId: string
  fromRole: string
  body: string
  sentAt: string
}

export interface OrderStatusData {
  orderId: string
  sellerId: string
  buyerId: string
  status: OrderStatus
  previousStatus: OrderStatus | null
  trackingNumber: string | null
  total: number | null
  changedAt: string
}

export interface InventoryAlertData {
  sellerId: string
  productId: string
  productName: string
  stockLevel: number
  threshold: number
  raisedAt: string
}

export interface DeliveryData {
  orderId: string
  courierId: string
  status: DeliveryStatus
  latitude: number | null
  longitude: number | null
  eta: string | null
  changedAt: string
}

export interface NotificationData {
  notificationId: string
  audience: NotificationAudience
  /** The user id or role the notification is addressed to; null for everyone. */
  target: string | null
  title: string
  body: string
  level: AlertLevel
  data: Json
  createdAt: string
}

export interface RoomMessageData {
  from: string
  room: string
  ts: string
  body: string
  meta: Json
}

/** Event type → data. Type names are `domain.thing` so logs and metrics group well. */
export interface EventMap {
  'parking.spaceChanged': SpaceChangedData
  'parking.ticketIssued': TicketIssuedData
  'parking.paymentCompleted': PaymentCompletedData
  'parking.alert': ParkingAlertData
  'appointment.changed': AppointmentData
  'reservation.created': ReservationData
  'reservation.statusChanged': ReservationData
  'restaurant.tableUpdated': TableData
  'restaurant.chatMessage': ChatMessageData
  'order.statusChanged': OrderStatusData
  'order.inventoryAlert': InventoryAlertData
  'order.deliveryUpdated': DeliveryData
  'notification.sent': NotificationData
  'room.message': RoomMessageData
}

export type EventType = keyof EventMap
