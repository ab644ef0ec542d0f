import fc from 'fast-check'
import { GraphQLError } from 'graphql'
import { describe, expect, it } from 'vitest'
import { type ChannelRef, channelName, ID_PATTERN, ROLES } from '../../src/events/channels.js'
import { decodeCursor, encodeCursor } from '../../src/events/cursor.js'

/** Fixed seed and bounded runs: a failure reproduces as is and the file stays fast. */
const RUNS = { seed: 0x5b_c0_75, numRuns: 400 } as const

/** The documented bound on a cursor a client may send back, in characters. */
const MAX_CURSOR_LENGTH = 4_096

const b64 = (text: string) => Buffer.from(text).toString('base64url')

/** Channel names of any text at all, lone surrogates included: the format must not care. */
const anyName = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('lot:42:parking', 'order:9', 'broadcast:notifications', '', '__proto__'),
)
const anySeq = fc.oneof(
  fc.nat({ max: 1_000 }),
  fc.maxSafeNat(),
  fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
)
const anyPositions = fc
  .uniqueArray(fc.tuple(anyName, anySeq), { selector: ([name]) => name, maxLength: 8 })
  .map((entries) => new Map(entries))

/**
 * What `decodeCursor` must do with `cursor`: return positions where every channel is a string
 * and every seq a non-negative safe integer, or throw the project's BAD_CURSOR error. Returns
 * the positions, or `undefined` when it was refused.
 */
function decodeOrRefuse(cursor: string): Map<string, number> | undefined {
  let decoded: Map<string, number>
  try {
    decoded = decodeCursor(cursor)
  } catch (error) {
    expect(error).toBeInstanceOf(GraphQLError)
    const refusal = error as GraphQLError
    expect(refusal.extensions['code']).toBe('BAD_CURSOR')
    expect(refusal.message).toMatch(/^invalid cursor: [a-z ]+$/)
    return undefined
  }
  expect(decoded).toBeInstanceOf(Map)
  for (const [channel, seq] of decoded) {
    expect(typeof channel).toBe('string')
    expect(Number.isSafeInteger(seq) && seq >= 0).toBe(true)
  }
  return decoded
}

/** An independent reading of the format's body: a JSON list of `[string, seq]` pairs. */
function expectedPositions(body: unknown): Map<string, number> | undefined {
  if (!Array.isArray(body)) return undefined
  const positions = new Map<string, number>()
  for (const entry of body) {
    if (!Array.isArray(entry) || entry.length !== 2) return undefined
    const [channel, seq] = entry as [unknown, unknown]
    if (typeof channel !== 'string') return undefined
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0) return undefined
    if (seq > Number.MAX_SAFE_INTEGER) return undefined
    positions.set(channel, seq)
  }
  return positions
}

/** Edits that turn a good cursor into a damaged one. */
const mutation = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    op: fc.constant('replace' as const),
    at: fc.nat(),
    text: fc.constantFrom('A', '_', '-', '.', '=', '+', '/', '%', ' ', '\n', 'é', '\u0000'),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
  fc.constant({ op: 'swapCase' as const }),
)
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never

function mutate(cursor: string, edit: Mutation): string {
  if (edit.op === 'swapCase') {
    return [...cursor]
      .map((ch) => (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()))
      .join('')
  }
  const at = edit.at % (cursor.length + 1)
  switch (edit.op) {
    case 'delete':
      return cursor.slice(0, at) + cursor.slice(at + 1)
    case 'insert':
      return cursor.slice(0, at) + edit.text + cursor.slice(at)
    case 'replace':
      return cursor.slice(0, at) + edit.text + cursor.slice(at + 1)
    case 'truncate':
      return cursor.slice(0, at)
    case 'duplicate':
      return cursor + cursor.slice(at)
  }
}

const validId = fc.stringMatching(ID_PATTERN)
/** Any channel a subscription can follow, with ids as long as the schema lets them be. */
const anyChannelRef: fc.Arbitrary<ChannelRef> = fc.oneof(
  validId.map((lotId): ChannelRef => ({ kind: 'lotParking', lotId })),
  validId.map((businessId): ChannelRef => ({ kind: 'businessAppointments', businessId })),
  fc.tuple(validId, validId).map(
    ([restaurantId, clientId]): ChannelRef => ({
      kind: 'restaurantChat',
      restaurantId,
      clientId,
    }),
  ),
  validId.map((orderId): ChannelRef => ({ kind: 'order', orderId })),
  validId.map((userId): ChannelRef => ({ kind: 'userNotifications', userId })),
  fc.constantFrom(...ROLES).map((role): ChannelRef => ({ kind: 'roleNotifications', role })),
  fc.constant<ChannelRef>({ kind: 'broadcastNotifications' }),
  validId.map((room): ChannelRef => ({ kind: 'room', room })),
)

describe('cursor properties', () => {
  it('round-trips any positions, keeping their order, whenever the cursor fits the limit', () => {
    fc.assert(
      fc.property(anyPositions, (positions) => {
        const cursor = encodeCursor(positions)
        if (cursor.length > MAX_CURSOR_LENGTH) {
          expect(decodeOrRefuse(cursor)).toBeUndefined()
          return
        }
        expect([...decodeCursor(cursor)]).toEqual([...positions])
      }),
      RUNS,
    )
  })

  it('encodes to an opaque token that needs no escaping in a URL, a header or JSON', () => {
    fc.assert(
      fc.property(anyPositions, (positions) => {
        const cursor = encodeCursor(positions)
        expect(cursor).toMatch(/^c1\.[A-Za-z0-9_-]*$/)
        expect(encodeURIComponent(cursor)).toBe(cursor)
        expect(JSON.stringify(cursor)).toBe(`"${cursor}"`)
      }),
      RUNS,
    )
  })

  it('always fits the limit for what a subscription follows (up to three channels, longest ids)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(anyChannelRef, { minLength: 1, maxLength: 3, selector: channelName }),
        fc.array(fc.maxSafeNat(), { minLength: 3, maxLength: 3 }),
        (refs, seqs) => {
          const positions = new Map(refs.map((ref, i) => [channelName(ref), seqs[i] ?? 0]))
          const cursor = encodeCursor(positions)
          expect(cursor.length).toBeLessThanOrEqual(MAX_CURSOR_LENGTH)
          expect([...decodeCursor(cursor)]).toEqual([...positions])
        },
      ),
      RUNS,
    )
  })

  it('decodes any string to valid positions or refuses it with BAD_CURSOR, nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.string({ maxLength: 200 }).map((body) => `c1.${body}`),
          fc.base64String({ maxLength: 200 }).map((body) => `c1.${body}`),
          fc.string({ unit: 'binary', maxLength: 200 }).map((text) => `c1.${b64(text)}`),
          fc.string({ minLength: 4_090, maxLength: 4_200 }).map((body) => `c1.${body}`),
        ),
        (cursor) => {
          decodeOrRefuse(cursor)
        },
      ),
      RUNS,
    )
  })

  it('decodes any damaged cursor to valid positions or refuses it with BAD_CURSOR', () => {
    fc.assert(
      fc.property(
        anyPositions,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (positions, edits) => {
          const damaged = edits.reduce(mutate, encodeCursor(positions))
          const decoded = decodeOrRefuse(damaged)
          // Whatever it accepts is a fixed point: encoding it again decodes to the same.
          if (decoded) expect([...decodeCursor(encodeCursor(decoded))]).toEqual([...decoded])
        },
      ),
      RUNS,
    )
  })

  it('accepts a well-formed body exactly when it is a list of [channel, seq] pairs', () => {
    const pair = fc.tuple(anyName, anySeq)
    const nearPair = fc.oneof(
      pair,
      fc.tuple(anyName, fc.oneof(fc.integer({ min: -5, max: -1 }), fc.double(), fc.string())),
      fc.tuple(fc.oneof(fc.integer(), fc.constant(null), fc.boolean()), anySeq),
      fc.tuple(anyName, anySeq, anySeq),
      fc.tuple(anyName),
      fc.constant(9_007_199_254_740_992).map((seq) => ['lot:1:parking', seq]),
      fc.jsonValue({ maxDepth: 2 }),
    )
    const body = fc.oneof(
      fc.array(pair, { maxLength: 6 }),
      fc.array(nearPair, { maxLength: 6 }),
      fc.jsonValue({ maxDepth: 3 }),
    )
    fc.assert(
      fc.property(body, (json) => {
        const cursor = `c1.${b64(JSON.stringify(json) ?? 'null')}`
        // Read back what JSON keeps of the value (e.g. -0 becomes 0, undefined becomes null).
        const expected = expectedPositions(JSON.parse(JSON.stringify(json) ?? 'null'))
        const decoded = decodeOrRefuse(cursor)
        if (cursor.length > MAX_CURSOR_LENGTH || expected === undefined) {
          expect(decoded).toBeUndefined()
        } else {
          expect(decoded && [...decoded]).toEqual([...expected])
        }
      }),
      RUNS,
    )
  })

  it('refuses any other version prefix or an extra dot-separated part', () => {
    fc.assert(
      fc.property(
        anyPositions,
        fc.string({ maxLength: 6 }).filter((version) => version !== 'c1'),
        fc.string({ maxLength: 10 }),
        (positions, version, extra) => {
          const body = encodeCursor(positions).slice('c1.'.length)
          expect(decodeOrRefuse(`${version}.${body}`)).toBeUndefined()
          expect(decodeOrRefuse(`c1.${body}.${extra}`)).toBeUndefined()
        },
      ),
      RUNS,
    )
  })
})
