import { forbidden, unauthenticated } from '../errors.js'
import type { ChannelRef } from '../events/channels.js'
import type { Viewer } from './viewer.js'

/** The parties of an order, for rules that depend on who bought, sold or delivers it. */
export interface OrderParties {
  readonly sellerId: string
  readonly buyerId: string
  readonly courierId: string | null
}

/** Facts the rules need from projections; passed in so the rules stay pure. */
export interface AccessLookups {
  orderParties(orderId: string): Promise<OrderParties | undefined>
}

const hasScope = (viewer: Viewer, scope: string) => viewer.scopes.has(scope)

/** `admin` and `service` read every channel. */
export function isPrivileged(viewer: Viewer): boolean {
  return viewer.role === 'admin' || viewer.role === 'service'
}

/**
 * Whether `viewer` may read `channel`: `admin` and `service` always; anyone else only where
 * a scope, their own `sub`, their role or their own orders cover it.
 */
export async function canRead(
  viewer: Viewer,
  channel: ChannelRef,
  lookups: AccessLookups,
): Promise<boolean> {
  if (isPrivileged(viewer)) return true
  switch (channel.kind) {
    case 'lotParking':
    case 'lotStats':
      return hasScope(viewer, `lot:${channel.lotId}`)
    case 'businessAppointments':
    case 'businessStats':
      return hasScope(viewer, `business:${channel.businessId}`)
    case 'restaurantReservations':
    case 'restaurantTables':
      return hasScope(viewer, `restaurant:${channel.restaurantId}`)
    case 'restaurantChat':
      return (
        hasScope(viewer, `restaurant:${channel.restaurantId}`) || viewer.sub === channel.clientId
      )
    case 'sellerOrders':
    case 'sellerInventory':
      return hasScope(viewer, `seller:${channel.sellerId}`)
    case 'courierDeliveries':
      return viewer.sub === channel.courierId
    case 'userNotifications':
      return viewer.sub === channel.userId
    case 'roleNotifications':
      return viewer.role === channel.role
    case 'broadcastNotifications':
      return true
    case 'room':
      return hasScope(viewer, `room:${channel.room}`)
    case 'order': {
      if (hasScope(viewer, `order:${channel.orderId}`)) return true
      const parties = await lookups.orderParties(channel.orderId)
      if (!parties) return false
      return (
        hasScope(viewer, `seller:${parties.sellerId}`) ||
        viewer.sub === parties.buyerId ||
        viewer.sub === parties.courierId
      )
    }
  }
}

/** The viewer, or an `UNAUTHENTICATED` error carrying why the token was refused. */
export function requireViewer(viewer: Viewer | null, refusal?: Error): Viewer {
  if (viewer) return viewer
  throw refusal ?? unauthenticated()
}

/** Throws `FORBIDDEN` unless `viewer` may read every channel given. Says nothing of which. */
export async function assertCanRead(
  viewer: Viewer,
  channels: readonly ChannelRef[],
  lookups: AccessLookups,
): Promise<void> {
  for (const channel of channels) {
    if (!(await canRead(viewer, channel, lookups))) throw forbidden('read this channel')
  }
}

/** Throws `FORBIDDEN` unless `viewer` is a backend (`service`) or an `admin`. */
export function assertCanPublish(viewer: Viewer): void {
  if (!isPrivileged(viewer)) throw forbidden('publish events (requires role service or admin)')
}
