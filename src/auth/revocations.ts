import type { Queryable } from '../db/database.js'
import { unauthenticated } from '../errors.js'
import type { Bus } from '../events/bus.js'
import { REVOCATIONS_CHANNEL } from '../events/channels.js'
import type { TokenVerifier } from './verify-token.js'
import type { Viewer } from './viewer.js'

/** The revoked subjects, kept in memory and shared by every instance through the bus. */
export interface Revocations {
  /**
   * Revokes every token of `sub` issued until now (the same second included, as `iat` has no
   * finer grain): stored, then announced so every instance closes the subject's connections.
   */
  revoke(sub: string, reason: string): Promise<{ revokedBefore: string }>
  /** Whether `viewer`'s token is revoked. */
  isRevoked(viewer: Viewer): boolean
  /** Loads the list and follows changes; resolves once loaded. */
  start(): Promise<void>
  stop(): void
}

export interface RevocationsOptions {
  readonly db: Queryable
  readonly bus: Bus
  /** Called on every instance when `sub` is newly revoked, e.g. to close its connections. */
  readonly onRevoked: (sub: string, reason: string) => void
}

interface Revocation {
  /** Tokens with an `iat` (epoch seconds) up to this are revoked. */
  readonly throughSecond: number
  readonly reason: string
}

/** Creates the revocation list of one instance. */
export function createRevocations({ db, bus, onRevoked }: RevocationsOptions): Revocations {
  let revoked = new Map<string, Revocation>()
  let stopListening: (() => void) | undefined

  const reload = async () => {
    const rows = await db.query<{ sub: string; through_second: string | number; reason: string }>(
      'select sub, floor(extract(epoch from revoked_before)) as through_second, reason from token_revocations',
    )
    const next = new Map(
      rows.map((row) => [
        row.sub,
        { throughSecond: Number(row.through_second), reason: row.reason },
      ]),
    )
    const previous = revoked
    revoked = next
    for (const [sub, revocation] of next) {
      if (previous.get(sub)?.throughSecond !== revocation.throughSecond) {
        onRevoked(sub, revocation.reason)
      }
    }
  }

  return {
    async revoke(sub, reason) {
      const [row] = await db.query<{ revoked_before: Date | string }>(
        `insert into token_revocations (sub, revoked_before, reason) values ($1, now(), $2)
         on conflict (sub) do update set revoked_before = now(), reason = excluded.reason
         returning revoked_before`,
        [sub, reason],
      )
      await reload()
      // Other instances reload on this signal; one that misses it (a bus outage) reloads on
      // the resync that follows the reconnect.
      await bus.publish(REVOCATIONS_CHANNEL, { kind: 'changed' }).catch(() => {})
      return { revokedBefore: new Date(row?.revoked_before ?? Date.now()).toISOString() }
    },
    isRevoked(viewer) {
      const revocation = revoked.get(viewer.sub)
      if (!revocation) return false
      // A token without `iat` cannot show it is newer than the revocation.
      return viewer.issuedAt === undefined || viewer.issuedAt <= revocation.throughSecond
    },
    async start() {
      stopListening = await bus.subscribe(REVOCATIONS_CHANNEL, () => {
        reload().catch(() => {})
      })
      await reload()
    },
    stop() {
      stopListening?.()
    },
  }
}

/** `verify`, refusing revoked tokens with `UNAUTHENTICATED` ("token revoked"). */
export function refusingRevoked(verify: TokenVerifier, revocations: Revocations): TokenVerifier {
  return async (token) => {
    const viewer = await verify(token)
    if (revocations.isRevoked(viewer)) throw unauthenticated('token revoked')
    return viewer
  }
}
