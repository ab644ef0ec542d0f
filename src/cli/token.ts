import { parseArgs } from 'node:util'
import { signToken } from '../auth/sign-token.js'
import { loadSigningConfig } from '../config.js'
import { isRole } from '../events/channels.js'

const USAGE = 'usage: npm run token -- --sub ID --role ROLE [--scope lot:42 ...] [--ttl SECONDS]'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      role: { type: 'string' },
      scope: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '3600' },
    },
  })
  const { secret, issuer, audience } = loadSigningConfig()
  if (!values.sub) throw new Error(`--sub is required\n${USAGE}`)
  if (!values.role || !isRole(values.role)) throw new Error(`--role must be a known role\n${USAGE}`)
  const ttl = Number(values.ttl)
  if (!Number.isInteger(ttl) || ttl <= 0)
    throw new Error(`--ttl must be a positive whole number of seconds\n${USAGE}`)
  const token = await signToken(secret, {
    sub: values.sub,
    role: values.role,
    scopes: values.scope ?? [],
    expiresInSeconds: ttl,
    issuer,
    audience,
  })
  process.stdout.write(`${token}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
