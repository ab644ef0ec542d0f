/**
 * The one module that names channels. A channel is a stream of events about one thing; its
 * name is built here from typed arguments and parsed back here, nowhere else.
 */

/** Roles a token may carry, from most to least powerful. */
export const ROLES = ['admin', 'service', 'operator', 'seller', 'client', 'delivery'] as const
export type Role = (typeof ROLES)[number]

/** Every kind of channel with the ids that identify one. */
export type ChannelRef =
  | { kind: 'lotParking'; lotId: string }
  | { kind: 'lotStats'; lotId: string }
  | { kind: 'businessAppointments'; businessId: string }
  | { kind: 'businessStats'; businessId: string }
  | { kind: 'restaurantReservations'; restaurantId: string }
  | { kind: 'restaurantTables'; restaurantId: string }
  | { kind: 'restaurantChat'; restaurantId: string; clientId: string }
  | { kind: 'order'; orderId: string }
  | { kind: 'sellerOrders'; sellerId: string }
  | { kind: 'sellerInventory'; sellerId: string }
  | { kind: 'courierDeliveries'; courierId: string }
  | { kind: 'userNotifications'; userId: string }
  | { kind: 'roleNotifications'; role: Role }
  | { kind: 'broadcastNotifications' }
  | { kind: 'room'; room: string }

export type ChannelKind = ChannelRef['kind']

/**
 * Channels whose changes are signals to re-read a projection (stats), not logged events:
 * they carry no sequence and are never replayed.
 */
export const SIGNAL_KINDS: ReadonlySet<ChannelKind> = new Set(['lotStats', 'businessStats'])

/**
 * Ids are short, printable and free of `:` so a channel name parses back unambiguously; `|`
 * is allowed because identity providers put it in subjects (`auth0|123`).
 */
export const ID_PATTERN = /^[A-Za-z0-9_.@|-]{1,128}$/

/** Whether `value` may be used as an id inside a channel name. */
export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value)
}

/**
 * The bus channel that tells instances the token revocation list changed. Not a ChannelRef:
 * no subscription can name it, and `parseChannel` does not know it.
 */
export const REVOCATIONS_CHANNEL = 'control:revocations'

/** The channel name for `ref`, e.g. `lot:42:parking`. */
export function channelName(ref: ChannelRef): string {
  switch (ref.kind) {
    case 'lotParking':
      return `lot:${ref.lotId}:parking`
    case 'lotStats':
      return `lot:${ref.lotId}:stats`
    case 'businessAppointments':
      return `business:${ref.businessId}:appointments`
    case 'businessStats':
      return `business:${ref.businessId}:stats`
    case 'restaurantReservations':
      return `restaurant:${ref.restaurantId}:reservations`
    case 'restaurantTables':
      return `restaurant:${ref.restaurantId}:tables`
    case 'restaurantChat':
      return `restaurant:${ref.restaurantId}:chat:${ref.clientId}`
    case 'order':
      return `order:${ref.orderId}`
    case 'sellerOrders':
      return `seller:${ref.sellerId}:orders`
    case 'sellerInventory':
      return `seller:${ref.sellerId}:inventory`
    case 'courierDeliveries':
      return `courier:${ref.courierId}:deliveries`
    case 'userNotifications':
      return `user:${ref.userId}:notifications`
    case 'roleNotifications':
      return `role:${ref.role}:notifications`
    case 'broadcastNotifications':
      return 'broadcast:notifications'
    case 'room':
      return `room:${ref.room}`
  }
}

const PARSERS: ReadonlyArray<[RegExp, (m: string[]) => ChannelRef | undefined]> = [
  [/^lot:([^:]+):parking$/, ([, lotId = '']) => ({ kind: 'lotParking', lotId })],
  [/^lot:([^:]+):stats$/, ([, lotId = '']) => ({ kind: 'lotStats', lotId })],
  [
    /^business:([^:]+):appointments$/,
    ([, businessId = '']) => ({ kind: 'businessAppointments', businessId }),
  ],
  [/^business:([^:]+):stats$/, ([, businessId = '']) => ({ kind: 'businessStats', businessId })],
  [
    /^restaurant:([^:]+):reservations$/,
    ([, restaurantId = '']) => ({ kind: 'restaurantReservations', restaurantId }),
  ],
  [
    /^restaurant:([^:]+):tables$/,
    ([, restaurantId = '']) => ({ kind: 'restaurantTables', restaurantId }),
  ],
  [
    /^restaurant:([^:]+):chat:([^:]+)$/,
    ([, restaurantId = '', clientId = '']) => ({ kind: 'restaurantChat', restaurantId, clientId }),
  ],
  [/^order:([^:]+)$/, ([, orderId = '']) => ({ kind: 'order', orderId })],
  [/^seller:([^:]+):orders$/, ([, sellerId = '']) => ({ kind: 'sellerOrders', sellerId })],
  [/^seller:([^:]+):inventory$/, ([, sellerId = '']) => ({ kind: 'sellerInventory', sellerId })],
  [
    /^courier:([^:]+):deliveries$/,
    ([, courierId = '']) => ({ kind: 'courierDeliveries', courierId }),
  ],
  [/^user:([^:]+):notifications$/, ([, userId = '']) => ({ kind: 'userNotifications', userId })],
  [
    /^role:([^:]+):notifications$/,
    ([, role = '']) => (isRole(role) ? { kind: 'roleNotifications', role } : undefined),
  ],
  [/^broadcast:notifications$/, () => ({ kind: 'broadcastNotifications' })],
  [/^room:([^:]+)$/, ([, room = '']) => ({ kind: 'room', room })],
]

/** Whether `value` names a role. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value)
}

/** Parses a channel name back into its typed form; `undefined` for anything malformed. */
export function parseChannel(name: string): ChannelRef | undefined {
  for (const [pattern, build] of PARSERS) {
    const match = pattern.exec(name)
    if (!match) continue
    const ref = build(match)
    if (ref && idsOf(ref).every(isValidId)) return ref
    return undefined
  }
  return undefined
}

function idsOf(ref: ChannelRef): string[] {
  return Object.entries(ref)
    .filter(([key]) => key !== 'kind')
    .map(([, value]) => value as string)
}
