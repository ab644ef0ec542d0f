import type { Role } from '../events/channels.js'

/** Who is asking, from a verified token. */
export interface Viewer {
  /** The user or service id (`sub`). */
  readonly sub: string
  readonly role: Role
  /** Resource ids the viewer may see, e.g. `lot:42`, `restaurant:123`. */
  readonly scopes: ReadonlySet<string>
  /** Expiry as epoch seconds (`exp`), when the token has one. */
  readonly expiresAt: number | undefined
  /** Issue time as epoch seconds (`iat`), when the token has one (revocation compares it). */
  readonly issuedAt?: number | undefined
}
