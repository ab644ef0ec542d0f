import { describe, expect, it } from 'vitest'
import {
  type ChannelKind,
  type ChannelRef,
  channelName,
  isValidId,
  parseChannel,
  ROLES,
} from '../../src/events/channels.js'

/**
 * One sample of every channel kind. Typed as a total map so a kind added to `ChannelRef`
 * without a sample here fails the typecheck, and the round trip covers it.
 */
const SAMPLES: { [K in ChannelKind]: Extract<ChannelRef, { kind: K }> } = {
  lotParking: { kind: 'lotParking', lotId: '42' },
  lotStats: { kind: 'lotStats', lotId: 'A-1_b.c' },
  businessAppointments: { kind: 'businessAppointments', businessId: 'b8' },
  businessStats: { kind: 'businessStats', businessId: 'b8' },
  restaurantReservations: { kind: 'restaurantReservations', restaurantId: '123' },
  restaurantTables: { kind: 'restaurantTables', restaurantId: '123' },
  restaurantChat: { kind: 'restaurantChat', restaurantId: '123', clientId: 'user@example.com' },
  order: { kind: 'order', orderId: 'ord-9' },
  sellerOrders: { kind: 'sellerOrders', sellerId: '5' },
  sellerInventory: { kind: 'sellerInventory', sellerId: '5' },
  courierDeliveries: { kind: 'courierDeliveries', courierId: 'c-1' },
  userNotifications: { kind: 'userNotifications', userId: 'u7' },
  roleNotifications: { kind: 'roleNotifications', role: 'operator' },
  broadcastNotifications: { kind: 'broadcastNotifications' },
  room: { kind: 'room', room: 'lobby' },
}

describe('channel names', () => {
  it.each(Object.values(SAMPLES))('round-trips $kind', (ref) => {
    const name = channelName(ref)
    expect(parseChannel(name)).toEqual(ref)
  })

  it('gives every kind a distinct name, so no two channels can collide', () => {
    const names = Object.values(SAMPLES).map(channelName)
    expect(new Set(names).size).toBe(names.length)
    // The same ids in two kinds still name two channels.
    expect(channelName({ kind: 'lotParking', lotId: '1' })).not.toBe(
      channelName({ kind: 'lotStats', lotId: '1' }),
    )
  })

  it('names the documented examples as documented', () => {
    expect(channelName({ kind: 'lotParking', lotId: '42' })).toBe('lot:42:parking')
    expect(channelName({ kind: 'lotStats', lotId: '42' })).toBe('lot:42:stats')
    expect(channelName({ kind: 'restaurantReservations', restaurantId: '123' })).toBe(
      'restaurant:123:reservations',
    )
    expect(channelName({ kind: 'order', orderId: '9' })).toBe('order:9')
    expect(channelName({ kind: 'sellerOrders', sellerId: '5' })).toBe('seller:5:orders')
    expect(channelName({ kind: 'userNotifications', userId: '7' })).toBe('user:7:notifications')
  })

  it.each(ROLES)('round-trips the notifications of role %s', (role) => {
    const ref: ChannelRef = { kind: 'roleNotifications', role }
    expect(parseChannel(channelName(ref))).toEqual(ref)
  })

  it.each([
    ['empty', ''],
    ['an unknown prefix', 'parking:42'],
    ['a known prefix without its suffix', 'lot:42'],
    ['an unknown suffix', 'lot:42:tickets'],
    ['an empty id', 'lot::parking'],
    ['an extra segment', 'lot:42:parking:extra'],
    ['an id with a space', 'lot:4 2:parking'],
    ['an id with a slash', 'room:a/b'],
    ['a trailing newline', 'lot:42:parking\n'],
    ['wrong case', 'LOT:42:parking'],
    ['an id longer than 128 characters', `lot:${'x'.repeat(129)}:parking`],
    ['a role that does not exist', 'role:superuser:notifications'],
    ['a chat without its client', 'restaurant:1:chat'],
    ['a broadcast with an id', 'broadcast:1:notifications'],
    ['a leading space', ' order:9'],
  ])('refuses a name with %s', (_what, name) => {
    expect(parseChannel(name)).toBeUndefined()
  })

  it('accepts ids up to 128 characters of the allowed alphabet only', () => {
    expect(isValidId('x'.repeat(128))).toBe(true)
    expect(isValidId('x'.repeat(129))).toBe(false)
    expect(isValidId('A-z_0.9@x')).toBe(true)
    for (const bad of ['', 'a:b', 'a b', 'ä', 'a\nb', 'a/b', 'a#b'])
      expect(isValidId(bad)).toBe(false)
  })
})
