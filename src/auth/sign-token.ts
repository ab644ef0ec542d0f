import { SignJWT } from 'jose'
import type { Role } from '../events/channels.js'

export interface TokenClaims {
  readonly sub: string
  readonly role: Role
  readonly scopes?: readonly string[]
  /** Lifetime in seconds from now (default 3600); a negative value mints an expired token. */
  readonly expiresInSeconds?: number
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
}

/** Signs an HS256 token with `secret`, the format `createTokenVerifier` accepts. */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({ role: claims.role, scopes: [...(claims.scopes ?? [])] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresInSeconds ?? 3_600))
  if (claims.issuer) jwt.setIssuer(claims.issuer)
  if (claims.audience) jwt.setAudience(claims.audience)
  return jwt.sign(new TextEncoder().encode(secret))
}
