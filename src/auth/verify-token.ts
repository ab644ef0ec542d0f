import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose'
import type { KeySource } from '../config.js'
import { unauthenticated } from '../errors.js'
import { isRole } from '../events/channels.js'
import type { Viewer } from './viewer.js'

/** Verifies a compact JWT and returns its viewer; rejects with an `UNAUTHENTICATED` error. */
export type TokenVerifier = (token: string) => Promise<Viewer>

export interface VerifierOptions {
  readonly keys: KeySource
  /** Required `iss`, when set. */
  readonly issuer?: string | undefined
  /** Required `aud`, when set. */
  readonly audience?: string | undefined
}

const MAX_TOKEN_LENGTH = 8_192

/**
 * Builds the verifier: HS256 with a shared secret, or RS256/ES256 with keys fetched (and
 * cached by jose) from a JWKS URL.
 */
export function createTokenVerifier({ keys, issuer, audience }: VerifierOptions): TokenVerifier {
  // The secret is imported once: handed over as bytes, jose imports it on every verification
  // (about 40 % of a verification's CPU, measured).
  const key: Promise<CryptoKey> | JWTVerifyGetKey =
    keys.kind === 'secret' ? importHmacKey(keys.secret) : createRemoteJWKSet(keys.url)
  const algorithms = keys.kind === 'secret' ? ['HS256'] : ['RS256', 'ES256']
  return async (token) => {
    if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated('token too long')
    let payload: JWTPayload
    try {
      const resolved = typeof key === 'function' ? key : await key
      const verified = await jwtVerify(token, resolved as CryptoKey, {
        algorithms,
        ...(issuer ? { issuer } : {}),
        ...(audience ? { audience } : {}),
      })
      payload = verified.payload
    } catch (error) {
      throw unauthenticated(describeJoseError(error))
    }
    return toViewer(payload)
  }
}

function importHmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  )
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired'
  if (error instanceof errors.JWTClaimValidationFailed)
    return `token claim "${error.claim}" rejected`
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid'
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed'
  return 'token invalid'
}

function toViewer(payload: JWTPayload): Viewer {
  const {
    sub,
    role,
    scopes = [],
    exp,
    iat,
  } = payload as JWTPayload & { role?: unknown; scopes?: unknown }
  if (typeof sub !== 'string' || sub.length === 0) throw unauthenticated('token has no "sub"')
  if (typeof role !== 'string' || !isRole(role))
    throw unauthenticated('token "role" is not a known role')
  if (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === 'string')) {
    throw unauthenticated('token "scopes" must be an array of strings')
  }
  return { sub, role, scopes: new Set(scopes), expiresAt: exp, issuedAt: iat }
}
