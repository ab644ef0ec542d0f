import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type ChannelKind,
  type ChannelRef,
  channelName,
  ID_PATTERN,
  isValidId,
  parseChannel,
  ROLES,
} from '../../src/events/channels.js'

/** Fixed seed and bounded runs: a failure reproduces as is and the file stays fast. */
const RUNS = { seed: 0xc4a1, numRuns: 500 } as const

/** The documented id alphabet, restated here rather than taken from the implementation. */
const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@|-'

/**
 * Ids that make collisions likely if the naming were ambiguous: very few of them, several
 * spelled like the words channel names are made of, and the separators ids may hold.
 */
const confusableId = fc.constantFrom(
  '1',
  '42',
  'parking',
  'stats',
  'chat',
  'orders',
  'notifications',
  'lot',
  'restaurant',
  'a|b',
  'a.b',
  'a-b',
  'auth0|42',
  'u@x.io',
  '_',
)
/** Any id the documented alphabet allows, 1-128 characters. */
const anyValidId = fc.oneof(
  confusableId,
  fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 128 }),
)

const KINDS = [
  'lotParking',
  'lotStats',
  'businessAppointments',
  'businessStats',
  'restaurantReservations',
  'restaurantTables',
  'restaurantChat',
  'order',
  'sellerOrders',
  'sellerInventory',
  'courierDeliveries',
  'userNotifications',
  'roleNotifications',
  'broadcastNotifications',
  'room',
] as const satisfies readonly ChannelKind[]

/** Every channel kind with ids from `id`. */
function refOf(id: fc.Arbitrary<string>): fc.Arbitrary<ChannelRef> {
  const one = (build: (a: string) => ChannelRef) => id.map(build)
  const byKind: { [K in ChannelKind]: fc.Arbitrary<ChannelRef> } = {
    lotParking: one((lotId) => ({ kind: 'lotParking', lotId })),
    lotStats: one((lotId) => ({ kind: 'lotStats', lotId })),
    businessAppointments: one((businessId) => ({ kind: 'businessAppointments', businessId })),
    businessStats: one((businessId) => ({ kind: 'businessStats', businessId })),
    restaurantReservations: one((restaurantId) => ({
      kind: 'restaurantReservations',
      restaurantId,
    })),
    restaurantTables: one((restaurantId) => ({ kind: 'restaurantTables', restaurantId })),
    restaurantChat: fc
      .tuple(id, id)
      .map(([restaurantId, clientId]) => ({ kind: 'restaurantChat', restaurantId, clientId })),
    order: one((orderId) => ({ kind: 'order', orderId })),
    sellerOrders: one((sellerId) => ({ kind: 'sellerOrders', sellerId })),
    sellerInventory: one((sellerId) => ({ kind: 'sellerInventory', sellerId })),
    courierDeliveries: one((courierId) => ({ kind: 'courierDeliveries', courierId })),
    userNotifications: one((userId) => ({ kind: 'userNotifications', userId })),
    roleNotifications: fc
      .constantFrom(...ROLES)
      .map((role) => ({ kind: 'roleNotifications', role })),
    broadcastNotifications: fc.constant({ kind: 'broadcastNotifications' }),
    room: one((room) => ({ kind: 'room', room })),
  }
  return fc.oneof(...KINDS.map((kind) => byKind[kind]))
}

const validRef = refOf(anyValidId)
const confusableRef = refOf(confusableId)

/**
 * Ids a caller could pass if it skipped validation: separators of the naming (`:`), the empty
 * string, whitespace, unicode, and over-long ones.
 */
const uncheckedId = fc.oneof(
  confusableId,
  fc.constantFrom('', ':', 'a:b', '1:parking', 'x:chat:y', '1:stats', 'a b', 'é', 'a\n', '*'),
  fc.string({ unit: fc.constantFrom('a', '1', ':', '|', ' ', '/'), minLength: 0, maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constant('x'.repeat(129)),
)
const uncheckedRef = refOf(uncheckedId)

/** Strings that look like channel names: known words and ids joined by `:`, and noise. */
const nameLike = fc.oneof(
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          'lot',
          'business',
          'restaurant',
          'order',
          'seller',
          'courier',
          'user',
          'role',
          'broadcast',
          'room',
          'parking',
          'stats',
          'appointments',
          'reservations',
          'tables',
          'chat',
          'orders',
          'inventory',
          'deliveries',
          'notifications',
          ...ROLES,
        ),
        uncheckedId,
      ),
      { minLength: 1, maxLength: 5 },
    )
    .map((parts) => parts.join(':')),
  fc.string({ unit: 'binary', maxLength: 40 }),
  validRef.map(channelName),
  fc
    .tuple(validRef.map(channelName), fc.constantFrom(' ', '\n', ':', '\r\n', '\u2028', 'x'))
    .map(([name, extra]) => name + extra),
)

/** Whether every id of `ref` is one `channelName` may be given. */
const allIdsValid = (ref: ChannelRef) =>
  Object.entries(ref)
    .filter(([key]) => key !== 'kind')
    .every(([, value]) => isValidId(String(value)))

/**
 * The naming scheme, restated from the design as templates (`{}` marks an id), to enumerate
 * every ref, valid ids or not, that a name could have been built from.
 */
const TEMPLATES: ReadonlyArray<readonly [string, (ids: string[]) => ChannelRef | undefined]> = [
  ['lot:{}:parking', ([lotId = '']) => ({ kind: 'lotParking', lotId })],
  ['lot:{}:stats', ([lotId = '']) => ({ kind: 'lotStats', lotId })],
  [
    'business:{}:appointments',
    ([businessId = '']) => ({ kind: 'businessAppointments', businessId }),
  ],
  ['business:{}:stats', ([businessId = '']) => ({ kind: 'businessStats', businessId })],
  [
    'restaurant:{}:reservations',
    ([restaurantId = '']) => ({ kind: 'restaurantReservations', restaurantId }),
  ],
  ['restaurant:{}:tables', ([restaurantId = '']) => ({ kind: 'restaurantTables', restaurantId })],
  [
    'restaurant:{}:chat:{}',
    ([restaurantId = '', clientId = '']) => ({ kind: 'restaurantChat', restaurantId, clientId }),
  ],
  ['order:{}', ([orderId = '']) => ({ kind: 'order', orderId })],
  ['seller:{}:orders', ([sellerId = '']) => ({ kind: 'sellerOrders', sellerId })],
  ['seller:{}:inventory', ([sellerId = '']) => ({ kind: 'sellerInventory', sellerId })],
  ['courier:{}:deliveries', ([courierId = '']) => ({ kind: 'courierDeliveries', courierId })],
  ['user:{}:notifications', ([userId = '']) => ({ kind: 'userNotifications', userId })],
  [
    'role:{}:notifications',
    ([role = '']) =>
      (ROLES as readonly string[]).includes(role)
        ? ({ kind: 'roleNotifications', role } as ChannelRef)
        : undefined,
  ],
  ['broadcast:notifications', () => ({ kind: 'broadcastNotifications' })],
  ['room:{}', ([room = '']) => ({ kind: 'room', room })],
]

/** Every way to fill `holes` literal-separated ids so the template spells `name`. */
function fillings(name: string, literals: readonly string[]): string[][] {
  const [first = '', ...rest] = literals
  if (!name.startsWith(first)) return []
  const remaining = name.slice(first.length)
  if (rest.length === 0) return remaining === '' ? [[]] : []
  const [next = '', ...after] = rest
  const results: string[][] = []
  // The id ends where some occurrence of the next literal starts (or at the very end).
  for (let end = 0; end <= remaining.length; end += 1) {
    if (after.length === 0 && next === '' && end !== remaining.length) continue
    if (!remaining.startsWith(next, end)) continue
    for (const tail of fillings(remaining.slice(end), [next, ...after])) {
      results.push([remaining.slice(0, end), ...tail])
    }
  }
  return results
}

/** Every ref, of any kind and with any ids, whose name is `name`. */
function preimagesOf(name: string): ChannelRef[] {
  return TEMPLATES.flatMap(([template, build]) =>
    fillings(name, template.split('{}')).flatMap((ids) => build(ids) ?? []),
  )
}

describe('channel name properties', () => {
  it('parses every name built from a valid ref back into that ref', () => {
    fc.assert(
      fc.property(validRef, (ref) => {
        expect(parseChannel(channelName(ref))).toEqual(ref)
      }),
      RUNS,
    )
  })

  it('gives two different valid refs two different names (injective), ids spelled like kinds included', () => {
    for (const refs of [validRef, confusableRef]) {
      fc.assert(
        fc.property(refs, refs, (a, b) => {
          if (channelName(a) === channelName(b)) expect(a).toEqual(b)
        }),
        RUNS,
      )
    }
  })

  it('keeps all names of a large set of confusable refs distinct', () => {
    fc.assert(
      fc.property(fc.uniqueArray(confusableRef, { minLength: 2, maxLength: 60 }), (refs) => {
        const keys = new Set(refs.map((ref) => JSON.stringify(ref)))
        const names = new Set(refs.map(channelName))
        expect(names.size).toBe(keys.size)
      }),
      RUNS,
    )
  })

  it('accepts an id exactly when it is 1-128 characters of the documented alphabet', () => {
    fc.assert(
      fc.property(fc.oneof(anyValidId, uncheckedId), (id) => {
        const documented =
          id.length >= 1 && id.length <= 128 && [...id].every((ch) => ID_CHARS.includes(ch))
        expect(isValidId(id)).toBe(documented)
        expect(ID_PATTERN.test(id)).toBe(documented)
      }),
      RUNS,
    )
  })

  it('never parses a name built from an invalid id into another channel', () => {
    fc.assert(
      fc.property(uncheckedRef, (ref) => {
        const parsed = parseChannel(channelName(ref))
        // Either the ref itself (its ids were valid after all) or refused: never someone else's.
        if (parsed !== undefined) expect(parsed).toEqual(ref)
        const idsValid = Object.entries(ref)
          .filter(([key]) => key !== 'kind')
          .every(([, value]) => isValidId(String(value)))
        expect(parsed !== undefined).toBe(idsValid)
      }),
      RUNS,
    )
  })

  it('has exactly one preimage with valid ids for every name (injective over all refs)', () => {
    fc.assert(
      fc.property(validRef, (ref) => {
        expect(preimagesOf(channelName(ref)).filter(allIdsValid)).toEqual([ref])
      }),
      RUNS,
    )
  })

  it('can only collide when an id is invalid, which is why every entry point checks ids', () => {
    // `channelName` itself does not check: `restaurant:a:chat:b:chat:c` is both the chat of
    // (a, b:chat:c) and of (a:chat:b, c). Ids reach it only through `checkId`/`idArg`, or as a
    // token's `sub`/`role` for the viewer's own notification channels.
    expect(channelName({ kind: 'restaurantChat', restaurantId: 'a', clientId: 'b:chat:c' })).toBe(
      channelName({ kind: 'restaurantChat', restaurantId: 'a:chat:b', clientId: 'c' }),
    )
    expect(preimagesOf('restaurant:a:chat:b:chat:c')).toHaveLength(2)
    expect(preimagesOf('restaurant:r:chat:x:reservations')).toHaveLength(2)
    fc.assert(
      fc.property(uncheckedRef, (ref) => {
        const preimages = preimagesOf(channelName(ref))
        expect(preimages).toContainEqual(ref)
        const others = preimages.filter((other) => JSON.stringify(other) !== JSON.stringify(ref))
        for (const other of others) expect(allIdsValid(ref) && allIdsValid(other)).toBe(false)
        // A token subject with `:` or spaces still names only its own notifications.
        if (ref.kind === 'userNotifications') expect(others).toEqual([])
      }),
      RUNS,
    )
  })

  it('parses only canonical names: whatever it accepts names itself exactly', () => {
    // The raw string a client sends (recentEvents, admin close) must be the very channel the
    // rules were checked against, so a parse must never accept an alias of another name.
    fc.assert(
      fc.property(nameLike, (name) => {
        const ref = parseChannel(name)
        if (ref === undefined) return
        expect(channelName(ref)).toBe(name)
        expect(parseChannel(channelName(ref))).toEqual(ref)
      }),
      RUNS,
    )
  })

  it('names every kind under its own prefix, so kinds never share names', () => {
    fc.assert(
      fc.property(validRef, validRef, (a, b) => {
        if (a.kind !== b.kind) expect(channelName(a)).not.toBe(channelName(b))
      }),
      RUNS,
    )
  })
})
