import fc from 'fast-check'
import { GraphQLError } from 'graphql'
import { describe, expect, it } from 'vitest'
import {
  type AccessLookups,
  assertCanPublish,
  assertCanRead,
  canRead,
  type OrderParties,
} from '../../src/auth/channel-access.js'
import type { Viewer } from '../../src/auth/viewer.js'
import type { Context } from '../../src/context.js'
import { type ChannelRef, ROLES, type Role } from '../../src/events/channels.js'
import { checkId, publisherOf, readerOf, viewerOf } from '../../src/schema/guards.js'

/** Fixed seed and bounded runs: a failure reproduces as is and the file stays fast. */
const RUNS = { seed: 0xacce55, numRuns: 400 } as const

// Few ids, so generated scopes, subjects and orders often match the channels generated.
const ID = fc.constantFrom('1', '2', '42', 'S1', 'u1', 'u2', 'c-1', 'auth0|7')
const ORDER_IDS = ['o1', 'o2', 'o3', 'missing'] as const

/**
 * The orders the lookups know, by id (`missing` never is). Parties are drawn from `ID`, so a
 * viewer's sub or seller scope often is one of them.
 */
const orderBook = fc.record({
  o1: fc.record({ sellerId: ID, buyerId: ID, courierId: fc.option(ID, { nil: null }) }),
  o2: fc.record({ sellerId: ID, buyerId: ID, courierId: fc.option(ID, { nil: null }) }),
  o3: fc.record({ sellerId: ID, buyerId: ID, courierId: fc.option(ID, { nil: null }) }),
})
type OrderBook = Readonly<Record<string, OrderParties>>

const lookupsOf = (book: OrderBook): AccessLookups => ({
  orderParties: async (orderId) => book[orderId],
})

const anyChannel: fc.Arbitrary<ChannelRef> = fc.oneof(
  ID.map((lotId): ChannelRef => ({ kind: 'lotParking', lotId })),
  ID.map((lotId): ChannelRef => ({ kind: 'lotStats', lotId })),
  ID.map((businessId): ChannelRef => ({ kind: 'businessAppointments', businessId })),
  ID.map((businessId): ChannelRef => ({ kind: 'businessStats', businessId })),
  ID.map((restaurantId): ChannelRef => ({ kind: 'restaurantReservations', restaurantId })),
  ID.map((restaurantId): ChannelRef => ({ kind: 'restaurantTables', restaurantId })),
  fc.tuple(ID, ID).map(
    ([restaurantId, clientId]): ChannelRef => ({
      kind: 'restaurantChat',
      restaurantId,
      clientId,
    }),
  ),
  fc.constantFrom(...ORDER_IDS).map((orderId): ChannelRef => ({ kind: 'order', orderId })),
  ID.map((sellerId): ChannelRef => ({ kind: 'sellerOrders', sellerId })),
  ID.map((sellerId): ChannelRef => ({ kind: 'sellerInventory', sellerId })),
  ID.map((courierId): ChannelRef => ({ kind: 'courierDeliveries', courierId })),
  ID.map((userId): ChannelRef => ({ kind: 'userNotifications', userId })),
  fc.constantFrom(...ROLES).map((role): ChannelRef => ({ kind: 'roleNotifications', role })),
  fc.constant<ChannelRef>({ kind: 'broadcastNotifications' }),
  ID.map((room): ChannelRef => ({ kind: 'room', room })),
)

/** Scopes as tokens carry them: the documented `kind:id` ones and near misses. */
const anyScope = fc.oneof(
  fc
    .tuple(fc.constantFrom('lot', 'business', 'restaurant', 'seller', 'order', 'room'), ID)
    .map(([kind, id]) => `${kind}:${id}`),
  fc.constantFrom(...ORDER_IDS).map((id) => `order:${id}`),
  fc.constantFrom('lot:*', '*', 'admin', 'lot:', 'LOT:42', 'lot:42:parking', 'seller:S1:orders'),
)
const NON_PRIVILEGED = ROLES.filter((role) => role !== 'admin' && role !== 'service')

const viewerWith = (sub: string, role: Role, scopes: Iterable<string>): Viewer => ({
  sub,
  role,
  scopes: new Set(scopes),
  expiresAt: undefined,
})
const anyViewer = (roles: readonly Role[] = ROLES) =>
  fc
    .tuple(ID, fc.constantFrom(...roles), fc.uniqueArray(anyScope, { maxLength: 6 }))
    .map(([sub, role, scopes]) => viewerWith(sub, role, scopes))

/**
 * The oracle, from the design's security model: `admin` and `service` read everything;
 * anyone else reads a channel only when something they hold covers it. What covers a channel
 * is listed as credentials (`scope:…`, `sub:…`, `role:…`, `anyone`) so that access is a plain
 * set intersection, written without the implementation's helpers.
 */
function coveringCredentials(channel: ChannelRef, book: OrderBook): string[] {
  switch (channel.kind) {
    case 'lotParking':
    case 'lotStats':
      return [`scope:lot:${channel.lotId}`]
    case 'businessAppointments':
    case 'businessStats':
      return [`scope:business:${channel.businessId}`]
    case 'restaurantReservations':
    case 'restaurantTables':
      return [`scope:restaurant:${channel.restaurantId}`]
    case 'restaurantChat':
      // The restaurant's staff and the client whose chat it is.
      return [`scope:restaurant:${channel.restaurantId}`, `sub:${channel.clientId}`]
    case 'sellerOrders':
    case 'sellerInventory':
      return [`scope:seller:${channel.sellerId}`]
    case 'courierDeliveries':
      return [`sub:${channel.courierId}`]
    case 'userNotifications':
      return [`sub:${channel.userId}`]
    case 'roleNotifications':
      return [`role:${channel.role}`]
    case 'broadcastNotifications':
      return ['anyone']
    case 'room':
      return [`scope:room:${channel.room}`]
    case 'order': {
      // "Their own orders": its seller (by scope), its buyer and its courier (by sub).
      const parties = book[channel.orderId]
      const covering = [`scope:order:${channel.orderId}`]
      if (parties) {
        covering.push(`scope:seller:${parties.sellerId}`, `sub:${parties.buyerId}`)
        if (parties.courierId !== null) covering.push(`sub:${parties.courierId}`)
      }
      return covering
    }
  }
}

const credentialsOf = (viewer: Viewer) =>
  new Set([
    'anyone',
    `sub:${viewer.sub}`,
    `role:${viewer.role}`,
    ...[...viewer.scopes].map((scope) => `scope:${scope}`),
  ])

function mayRead(viewer: Viewer, channel: ChannelRef, book: OrderBook): boolean {
  if (viewer.role === 'admin' || viewer.role === 'service') return true
  const held = credentialsOf(viewer)
  return coveringCredentials(channel, book).some((credential) => held.has(credential))
}

/** Runs `action` and returns the `extensions.code` of the GraphQLError it threw, if any. */
async function codeOfFailure(action: () => unknown): Promise<unknown> {
  try {
    await action()
  } catch (error) {
    expect(error).toBeInstanceOf(GraphQLError)
    return (error as GraphQLError).extensions['code']
  }
  return undefined
}

/** A request context around `viewer` with the lookups and a refusal counter, no server. */
function contextFor(viewer: Viewer | null, book: OrderBook, authRefusal?: GraphQLError) {
  const refusals: unknown[] = []
  const ctx = {
    viewer,
    authRefusal,
    lastEventId: undefined,
    services: {
      lookups: lookupsOf(book),
      metrics: { authRefusals: { inc: (labels: unknown) => refusals.push(labels) } },
      // No publish rate here: these properties are about who, not how often.
      publishRate: { take: () => 0 },
    },
  } as unknown as Context
  return { ctx, refusals }
}

describe('channel access properties', () => {
  it('agrees with the design for every viewer and channel', async () => {
    await fc.assert(
      fc.asyncProperty(anyViewer(), anyChannel, orderBook, async (viewer, channel, book) => {
        expect(await canRead(viewer, channel, lookupsOf(book))).toBe(mayRead(viewer, channel, book))
      }),
      { ...RUNS, numRuns: 2_000 },
    )
  })

  it('lets admin and service read every channel, with no scopes, whatever the orders', async () => {
    await fc.assert(
      fc.asyncProperty(
        ID,
        fc.constantFrom<Role>('admin', 'service'),
        anyChannel,
        orderBook,
        async (sub, role, channel, book) => {
          expect(await canRead(viewerWith(sub, role, []), channel, lookupsOf(book))).toBe(true)
          expect(await canRead(viewerWith(sub, role, []), channel, lookupsOf({}))).toBe(true)
        },
      ),
      RUNS,
    )
  })

  it('never takes access away when scopes are added', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyViewer(),
        fc.uniqueArray(anyScope, { minLength: 1, maxLength: 6 }),
        anyChannel,
        orderBook,
        async (viewer, extra, channel, book) => {
          const lookups = lookupsOf(book)
          const wider = viewerWith(viewer.sub, viewer.role, [...viewer.scopes, ...extra])
          if (await canRead(viewer, channel, lookups)) {
            expect(await canRead(wider, channel, lookups)).toBe(true)
          }
        },
      ),
      RUNS,
    )
  })

  it('takes access away once the covering scopes are removed and the subject covers nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyViewer(NON_PRIVILEGED),
        anyChannel,
        orderBook,
        async (viewer, channel, book) => {
          const covering = coveringCredentials(channel, book)
          const scopes = [...viewer.scopes].filter((scope) => !covering.includes(`scope:${scope}`))
          // A subject no channel names, and the role kept: only role and broadcast remain.
          const stripped = viewerWith('nobody-in-particular', viewer.role, scopes)
          const readable = await canRead(stripped, channel, lookupsOf(book))
          const byRoleOrEveryone =
            channel.kind === 'broadcastNotifications' ||
            (channel.kind === 'roleNotifications' && channel.role === viewer.role)
          expect(readable).toBe(byRoleOrEveryone)
        },
      ),
      RUNS,
    )
  })

  it('grants nothing through near-miss scopes, a subject that equals an id, or another kind', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...NON_PRIVILEGED),
        anyChannel.filter(
          (channel) =>
            channel.kind !== 'broadcastNotifications' && channel.kind !== 'roleNotifications',
        ),
        orderBook,
        async (role, channel, book) => {
          const covering = coveringCredentials(channel, book)
          const ids = Object.entries(channel)
            .filter(([key]) => key !== 'kind')
            .map(([, value]) => String(value))
          // Every scope that names one of the channel's ids, except those that cover it.
          const nearMisses = ids.flatMap((id) =>
            ['lot', 'business', 'restaurant', 'seller', 'order', 'room', 'user', 'courier']
              .flatMap((kind) => [`${kind}:${id}`, `${kind.toUpperCase()}:${id}`, `${kind}:${id} `])
              .concat([id, `${id}:*`, '*', `lot:${id}:parking`, `seller:${id}:orders`]),
          )
          const scopes = nearMisses.filter((scope) => !covering.includes(`scope:${scope}`))
          const sub = 'someone-else'
          if (covering.includes(`sub:${sub}`)) return
          const viewer = viewerWith(sub, role, scopes)
          expect(await canRead(viewer, channel, lookupsOf(book))).toBe(false)
        },
      ),
      RUNS,
    )
  })

  it('lets an order scope open exactly that order, known to the lookups or not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...NON_PRIVILEGED),
        fc.constantFrom(...ORDER_IDS),
        fc.constantFrom(...ORDER_IDS),
        orderBook,
        async (role, granted, asked, book) => {
          const viewer = viewerWith('someone-else', role, [`order:${granted}`])
          const readable = await canRead(viewer, { kind: 'order', orderId: asked }, lookupsOf(book))
          expect(readable).toBe(granted === asked)
        },
      ),
      RUNS,
    )
  })

  it('refuses a set of channels with FORBIDDEN, naming none, unless every one is readable', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyViewer(),
        fc.array(anyChannel, { minLength: 1, maxLength: 4 }),
        orderBook,
        async (viewer, channels, book) => {
          const all = channels.every((channel) => mayRead(viewer, channel, book))
          let failure: unknown
          try {
            await assertCanRead(viewer, channels, lookupsOf(book))
          } catch (error) {
            failure = error
          }
          if (all) {
            expect(failure).toBeUndefined()
            return
          }
          expect(failure).toBeInstanceOf(GraphQLError)
          const refusal = failure as GraphQLError
          expect(refusal.extensions['code']).toBe('FORBIDDEN')
          // The same words whichever channel it was: a refusal tells nothing about it.
          expect(refusal.message).toBe('not allowed to read this channel')
        },
      ),
      RUNS,
    )
  })

  it('lets only admin and service publish', () => {
    fc.assert(
      fc.property(anyViewer(), (viewer) => {
        const privileged = viewer.role === 'admin' || viewer.role === 'service'
        let code: unknown
        try {
          assertCanPublish(viewer)
        } catch (error) {
          code = (error as GraphQLError).extensions['code']
        }
        expect(code).toBe(privileged ? undefined : 'FORBIDDEN')
      }),
      RUNS,
    )
  })
})

describe('guard properties', () => {
  it('readerOf returns the viewer when allowed, else FORBIDDEN counted once', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyViewer(),
        fc.array(anyChannel, { minLength: 1, maxLength: 3 }),
        orderBook,
        async (viewer, channels, book) => {
          const { ctx, refusals } = contextFor(viewer, book)
          const allowed = channels.every((channel) => mayRead(viewer, channel, book))
          if (allowed) {
            expect(await readerOf(ctx, channels)).toBe(viewer)
            expect(refusals).toEqual([])
          } else {
            expect(await codeOfFailure(() => readerOf(ctx, channels))).toBe('FORBIDDEN')
            expect(refusals).toEqual([{ code: 'FORBIDDEN' }])
          }
        },
      ),
      RUNS,
    )
  })

  it('without a viewer, every guard answers UNAUTHENTICATED (or the token refusal) and counts no FORBIDDEN', async () => {
    const expired = new GraphQLError('token expired', { extensions: { code: 'UNAUTHENTICATED' } })
    await fc.assert(
      fc.asyncProperty(
        fc.array(anyChannel, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (channels, withRefusal) => {
          const { ctx, refusals } = contextFor(null, {}, withRefusal ? expired : undefined)
          for (const guard of [
            () => readerOf(ctx, channels),
            () => publisherOf(ctx),
            () => viewerOf(ctx),
          ]) {
            expect(await codeOfFailure(guard)).toBe('UNAUTHENTICATED')
          }
          if (withRefusal) expect(() => viewerOf(ctx)).toThrow(expired)
          expect(refusals).toEqual([])
        },
      ),
      RUNS,
    )
  })

  it('publisherOf accepts admin and service only', async () => {
    await fc.assert(
      fc.asyncProperty(anyViewer(), async (viewer) => {
        const { ctx } = contextFor(viewer, {})
        const privileged = viewer.role === 'admin' || viewer.role === 'service'
        expect(await codeOfFailure(() => publisherOf(ctx))).toBe(
          privileged ? undefined : 'FORBIDDEN',
        )
      }),
      RUNS,
    )
  })

  it('checkId accepts exactly 1-128 characters of A-Z a-z 0-9 _ . @ | - and names the field otherwise', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@|-'
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: fc.constantFrom(...alphabet), minLength: 0, maxLength: 130 }),
          fc.string({ unit: 'binary', maxLength: 20 }),
          fc.constantFrom(':', 'a:b', 'lot:1', ' 1', '1\n', 'x'.repeat(129), 'é', '*'),
        ),
        fc.constantFrom('lotId', 'input.room', 'orderId'),
        async (value, field) => {
          const valid =
            value.length >= 1 &&
            value.length <= 128 &&
            [...value].every((ch) => alphabet.includes(ch))
          if (valid) {
            expect(checkId(field, value)).toBe(value)
            return
          }
          expect(await codeOfFailure(() => checkId(field, value))).toBe('BAD_USER_INPUT')
          try {
            checkId(field, value)
          } catch (error) {
            const refusal = error as GraphQLError
            expect(refusal.extensions['field']).toBe(field)
            expect(refusal.message.startsWith(`${field}: `)).toBe(true)
          }
        },
      ),
      RUNS,
    )
  })
})
