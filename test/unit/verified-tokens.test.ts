import { describe, expect, it } from 'vitest'
import { signToken } from '../../src/auth/sign-token.js'
import { rememberingVerifiedTokens } from '../../src/auth/verified-tokens.js'
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/verify-token.js'

const SECRET = 'verified-tokens-test-secret-0123456789'

/**
 * The real HS256 verifier behind `rememberingVerifiedTokens`, counting the signature checks
 * it makes, on a clock the test moves.
 */
function remembering({ capacity, maxAgeMs }: { capacity: number; maxAgeMs: number }) {
  const signatures = createTokenVerifier({
    keys: { kind: 'secret', secret: SECRET, ephemeral: false },
  })
  const counted = { checks: 0 }
  const counting: TokenVerifier = (token) => {
    counted.checks++
    return signatures(token)
  }
  let at = Date.now()
  const clock = { advance: (ms: number) => (at += ms) }
  const verify = rememberingVerifiedTokens(counting, { capacity, maxAgeMs, now: () => at })
  return { verify, counted, clock }
}

describe('remembering verified tokens', () => {
  it('checks the signature of a token once while it is trusted, then again', async () => {
    const { verify, counted, clock } = remembering({ capacity: 10, maxAgeMs: 60_000 })
    const token = await signToken(SECRET, { sub: 'backend', role: 'service' })
    const first = await verify(token)
    expect(await verify(token)).toBe(first)
    expect(counted.checks).toBe(1)
    clock.advance(60_000)
    expect((await verify(token)).sub).toBe('backend')
    expect(counted.checks).toBe(2)
  })

  it('never trusts a token past its expiry', async () => {
    const { verify, counted, clock } = remembering({ capacity: 10, maxAgeMs: 600_000 })
    const token = await signToken(SECRET, { sub: 'short', role: 'client', expiresInSeconds: 2 })
    await verify(token)
    clock.advance(1_000)
    await verify(token)
    expect(counted.checks).toBe(1)
    clock.advance(1_500)
    // Trust ends at `exp`: the next use checks the signature again (and the real clock of the
    // check, not the test's, decides whether jose still accepts it).
    await verify(token).catch(() => {})
    expect(counted.checks).toBe(2)
  })

  it('does not remember refusals', async () => {
    const { verify, counted } = remembering({ capacity: 10, maxAgeMs: 60_000 })
    const forged = await signToken('another-secret-of-enough-length-0123', {
      sub: 'mallory',
      role: 'admin',
    })
    await expect(verify(forged)).rejects.toMatchObject({
      extensions: { code: 'UNAUTHENTICATED' },
    })
    await expect(verify(forged)).rejects.toMatchObject({
      extensions: { code: 'UNAUTHENTICATED' },
    })
    expect(counted.checks).toBe(2)
  })

  it('forgets the oldest token beyond its capacity', async () => {
    const { verify, counted } = remembering({ capacity: 2, maxAgeMs: 60_000 })
    const tokens = await Promise.all(
      ['a', 'b', 'c'].map((sub) => signToken(SECRET, { sub, role: 'client' })),
    )
    for (const token of tokens) await verify(token)
    expect(counted.checks).toBe(3)
    await verify(tokens[2] as string)
    await verify(tokens[1] as string)
    expect(counted.checks).toBe(3)
    await verify(tokens[0] as string)
    expect(counted.checks).toBe(4)
  })
})
