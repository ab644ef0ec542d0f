import type { TokenVerifier } from './verify-token.js'
import type { Viewer } from './viewer.js'

export interface RememberedTokensOptions {
  /** Tokens remembered at most; the oldest is forgotten first. */
  readonly capacity: number
  /** How long a verification is trusted, ms (never past the token's `exp`). */
  readonly maxAgeMs: number
  readonly now?: () => number
}

interface Remembered {
  readonly viewer: Viewer
  readonly until: number
}

/**
 * `verify`, remembering each token it accepted for a while, so that a backend or a client
 * that sends the same token with every request pays for one signature check, not one per
 * request. Refusals are not remembered, an expired token is verified again (and refused), and
 * revocation is checked by the caller on every use.
 */
export function rememberingVerifiedTokens(
  verify: TokenVerifier,
  { capacity, maxAgeMs, now = Date.now }: RememberedTokensOptions,
): TokenVerifier {
  const remembered = new Map<string, Remembered>()
  return async (token) => {
    const known = remembered.get(token)
    if (known && now() < known.until) return known.viewer
    remembered.delete(token)
    const viewer = await verify(token)
    const expiresAt = viewer.expiresAt === undefined ? Infinity : viewer.expiresAt * 1000
    remembered.set(token, { viewer, until: Math.min(now() + maxAgeMs, expiresAt) })
    // Maps iterate in insertion order: the first key is the oldest.
    if (remembered.size > capacity) remembered.delete(remembered.keys().next().value as string)
    return viewer
  }
}
