import { signToken } from './sign-token.js'

const DEV_TOKEN_LIFETIME = 24 * 3_600 // s

/** Tokens printed at start in development, signed with the ephemeral secret. */
export async function mintDevTokens(secret: string): Promise<{ admin: string; service: string }> {
  const [admin, service] = await Promise.all([
    signToken(secret, { sub: 'dev-admin', role: 'admin', expiresInSeconds: DEV_TOKEN_LIFETIME }),
    signToken(secret, {
      sub: 'dev-service',
      role: 'service',
      expiresInSeconds: DEV_TOKEN_LIFETIME,
    }),
  ])
  return { admin, service }
}
