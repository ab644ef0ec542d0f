/**
 * What the two baseline servers share with Switchboard for the benchmark: the slice of the
 * schema the bench documents touch (same type, field, argument and input names as
 * `schema/schema.graphql`), an in-memory lot state that yields the same event shape, and
 * token checks done the same way as Switchboard (jose, HS256).
 */
import { jwtVerify } from 'jose'

/** The slice of Switchboard's schema the bench documents and publish requests use. */
export const PARKING_SLICE_SDL = /* GraphQL */ `
  scalar DateTime

  enum SpaceState {
    FREE
    OCCUPIED
    OUT_OF_SERVICE
    RESERVED
  }

  interface Event {
    channel: String!
    seq: Int!
    cursor: String
    publishedAt: DateTime!
  }

  type SpaceStateChanged implements Event {
    channel: String!
    seq: Int!
    cursor: String
    publishedAt: DateTime!
    lotId: ID!
    spaceNumber: String!
    previousState: SpaceState!
    state: SpaceState!
    changedAt: DateTime!
    vehiclePlate: String
    customerName: String
  }

  union ParkingEvent = SpaceStateChanged

  type Lot {
    id: ID!
    name: String!
    alertThreshold: Float!
  }

  input UpsertLotInput {
    lotId: ID!
    name: String!
    spaces: [String!]!
    alertThreshold: Float
  }

  input SetSpaceStateInput {
    lotId: ID!
    spaceNumber: String!
    state: SpaceState!
    vehiclePlate: String
    customerName: String
  }

  type Query {
    lot(lotId: ID!): Lot
  }

  type Mutation {
    upsertLot(input: UpsertLotInput!, idempotencyKey: String): Lot!
    setSpaceState(input: SetSpaceStateInput!, idempotencyKey: String): SpaceStateChanged!
  }

  type Subscription {
    parkingUpdated(lotId: ID!, after: String): ParkingEvent!
  }
`

/** A space change as subscribers receive it (`SpaceStateChanged`). */
export interface SpaceEvent {
  readonly __typename: 'SpaceStateChanged'
  readonly channel: string
  readonly seq: number
  readonly cursor: string
  readonly publishedAt: string
  readonly lotId: string
  readonly spaceNumber: string
  readonly previousState: string
  readonly state: string
  readonly changedAt: string
  readonly vehiclePlate: string | null
  readonly customerName: string | null
}

/** `upsertLot`'s input. */
export interface LotInput {
  readonly lotId: string
  readonly name: string
  readonly spaces: readonly string[]
  readonly alertThreshold?: number | null
}

/** `setSpaceState`'s input. */
export interface SpaceInput {
  readonly lotId: string
  readonly spaceNumber: string
  readonly state: string
  readonly vehiclePlate?: string | null
  readonly customerName?: string | null
}

interface LotState {
  readonly id: string
  name: string
  alertThreshold: number
  seq: number
  readonly spaces: Map<string, string>
}

/** Lots in memory: spaces and a per-channel sequence, as Switchboard's log numbers events. */
export interface ParkingState {
  upsertLot(input: LotInput): { id: string; name: string; alertThreshold: number }
  hasLot(lotId: string): boolean
  /** The event of a space change; throws when the lot or space does not exist. */
  setSpaceState(input: SpaceInput): SpaceEvent
}

/** A fresh, empty `ParkingState`. */
export function createParkingState(): ParkingState {
  const lots = new Map<string, LotState>()
  return {
    upsertLot({ lotId, name, spaces, alertThreshold }) {
      let lot = lots.get(lotId)
      if (!lot) {
        lot = { id: lotId, name, alertThreshold: 0.95, seq: 0, spaces: new Map() }
        lots.set(lotId, lot)
      }
      lot.name = name
      if (alertThreshold != null) lot.alertThreshold = alertThreshold
      for (const space of spaces) if (!lot.spaces.has(space)) lot.spaces.set(space, 'FREE')
      return { id: lot.id, name: lot.name, alertThreshold: lot.alertThreshold }
    },
    hasLot: (lotId) => lots.has(lotId),
    setSpaceState(input) {
      const lot = lots.get(input.lotId)
      if (!lot) throw new Error(`lot "${input.lotId}" not found`)
      const previousState = lot.spaces.get(input.spaceNumber)
      if (!previousState) throw new Error(`space "${input.spaceNumber}" not found`)
      lot.spaces.set(input.spaceNumber, input.state)
      lot.seq += 1
      const channel = `lot:${lot.id}:parking`
      const now = new Date().toISOString()
      return {
        __typename: 'SpaceStateChanged',
        channel,
        seq: lot.seq,
        cursor: Buffer.from(`${channel}:${lot.seq}`).toString('base64url'),
        publishedAt: now,
        lotId: lot.id,
        spaceNumber: input.spaceNumber,
        previousState,
        state: input.state,
        changedAt: now,
        vehiclePlate: input.vehiclePlate?.trim() || null,
        customerName: input.customerName?.trim() || null,
      }
    },
  }
}

/** Who a verified token names. */
export interface BenchViewer {
  readonly sub: string
  readonly role: string
  readonly scopes: ReadonlySet<string>
}

/**
 * Verifies an HS256 token with `secret` (jose `jwtVerify`, as Switchboard does) and returns
 * its viewer; rejects when the signature, algorithm or expiry is wrong.
 */
export async function verifyBenchToken(secret: Uint8Array, token: string): Promise<BenchViewer> {
  const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] })
  const scopes = Array.isArray(payload['scopes']) ? payload['scopes'].map(String) : []
  return { sub: String(payload.sub), role: String(payload['role']), scopes: new Set(scopes) }
}

/** Whether `viewer` may publish: Switchboard's rule (`service` or `admin`). */
export const canPublish = (viewer: BenchViewer): boolean =>
  viewer.role === 'service' || viewer.role === 'admin'

/** Whether `viewer` may follow `lotId`: Switchboard's rule for lot channels. */
export const canReadLot = (viewer: BenchViewer, lotId: string): boolean =>
  canPublish(viewer) || viewer.scopes.has(`lot:${lotId}`)

/** Reads the bench server settings every baseline takes from its environment. */
export function baselineSettings(env: NodeJS.ProcessEnv = process.env): {
  port: number
  host: string
  secret: Uint8Array
} {
  const secret = env['JWT_SECRET']
  if (!secret) throw new Error('JWT_SECRET is required')
  return {
    port: Number(env['PORT'] ?? 0),
    host: env['HOST'] ?? '127.0.0.1',
    secret: new TextEncoder().encode(secret),
  }
}
