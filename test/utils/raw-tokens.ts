import { type JWTPayload, SignJWT } from 'jose'
import { TEST_SECRET } from './tokens.js'

/**
 * Signs arbitrary claims with HS256, for tokens `signToken` refuses to make (unknown role, no
 * `sub`). Valid for an hour unless `claims.exp` says otherwise.
 */
export function signRawToken(claims: JWTPayload, secret: string = TEST_SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ iat: now, exp: now + 3_600, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(secret))
}
