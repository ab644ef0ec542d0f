import { signToken, type TokenClaims } from '../../src/auth/sign-token.js'

/** The fixture HS256 secret every test server verifies with. */
export const TEST_SECRET = 'switchboard-test-secret-0123456789-abcdefghijklmnop'

/** Signs a token with the fixture secret. */
export function tokenFor(claims: TokenClaims): Promise<string> {
  return signToken(TEST_SECRET, claims)
}

export const serviceToken = () => tokenFor({ sub: 'backend-1', role: 'service' })
export const adminToken = () => tokenFor({ sub: 'admin-1', role: 'admin' })
