import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'

/** How tokens are verified: a shared HS256 secret or a remote JWKS (RS256/ES256). */
export type KeySource =
  | { kind: 'secret'; secret: string; ephemeral: boolean }
  | { kind: 'jwks'; url: URL }

/** The whole, validated configuration of one Switchboard instance. */
export interface Config {
  /** `NODE_ENV === 'production'`: no dev tokens, a key is mandatory. */
  readonly production: boolean
  /** TCP port to listen on (`PORT`, default 8080; 0 picks a free port). */
  readonly port: number
  /** Interface to bind (`HOST`, default `0.0.0.0`). */
  readonly host: string
  /** Embedded database directory (`DATA_DIR`, default `./data`); `memory://` keeps nothing. */
  readonly dataDir: string
  /** PostgreSQL connection string (`DATABASE_URL`); unset selects the embedded database. */
  readonly databaseUrl: string | undefined
  /** Connections in the PostgreSQL pool (`DATABASE_POOL_SIZE`, default 10). */
  readonly databasePoolSize: number
  /** Redis URL (`REDIS_URL`); set selects the Redis bus so instances share events. */
  readonly redisUrl: string | undefined
  /** Prefix of the bus channels on Redis (`REDIS_PREFIX`, default `switchboard:`). */
  readonly redisPrefix: string
  /** Token verification (`JWT_SECRET` or `JWT_JWKS_URL`, optional `JWT_ISSUER`, `JWT_AUDIENCE`). */
  readonly jwt: {
    readonly keys: KeySource
    readonly issuer: string | undefined
    readonly audience: string | undefined
  }
  /** Minimum spacing of coalesced stats messages per subscription (`STATS_INTERVAL_MS`, default 250). */
  readonly statsIntervalMs: number
  /** On SIGTERM, how long in-flight work may take before the process exits anyway
   * (`DRAIN_TIMEOUT_MS`, default 10000). */
  readonly drainTimeoutMs: number
  /**
   * PostgreSQL NOTIFY channels to ingest, each mapped to the publish mutation its payload is
   * the input of (`NOTIFY_CHANNELS=spaces_changed=setSpaceState,orders=publishOrderUpdate`).
   * Needs `DATABASE_URL`. Empty by default.
   */
  readonly notifyChannels: ReadonlyMap<string, string>
  /** Log retention: events older than `RETENTION_MAX_AGE_HOURS` (default 168) are pruned. */
  readonly retentionMaxAgeHours: number
  /** Log retention: each channel keeps at most `RETENTION_MAX_EVENTS` events (default 10000). */
  readonly retentionMaxEvents: number
  /** How often pruning runs (`RETENTION_INTERVAL_MS`, default 60000). */
  readonly retentionIntervalMs: number
  /** How long a publish's `idempotencyKey` is remembered (`IDEMPOTENCY_WINDOW_MS`, default 300000). */
  readonly idempotencyWindowMs: number
  /** pino level (`LOG_LEVEL`, default `info`; `silent` disables logs). */
  readonly logLevel: string
  /**
   * Bearer token `/metrics` requires (`METRICS_TOKEN`); unset (default), `/metrics` is open to
   * whoever reaches the port.
   */
  readonly metricsToken: string | undefined
  /** Print ready-to-use dev tokens at start (outside production when the secret is ephemeral). */
  readonly printDevTokens: boolean
}

type Env = Readonly<Record<string, string | undefined>>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Raised for a configuration that cannot work; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`)
  }
  return value
}

function readUrl(env: Env, name: string): URL | undefined {
  const raw = env[name]
  if (!raw) return undefined
  try {
    return new URL(raw)
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${raw}"`)
  }
}

function readKeys(env: Env, production: boolean): KeySource {
  const secret = env['JWT_SECRET']
  const jwksUrl = readUrl(env, 'JWT_JWKS_URL')
  if (secret && jwksUrl) {
    throw new ConfigError('set either JWT_SECRET or JWT_JWKS_URL, not both')
  }
  if (jwksUrl) return { kind: 'jwks', url: jwksUrl }
  if (secret) {
    if (secret.length < 32) {
      throw new ConfigError('JWT_SECRET must be at least 32 characters (HS256 needs 256 bits)')
    }
    return { kind: 'secret', secret, ephemeral: false }
  }
  if (production) {
    throw new ConfigError('NODE_ENV=production requires JWT_SECRET or JWT_JWKS_URL')
  }
  return { kind: 'secret', secret: randomBytes(32).toString('base64url'), ephemeral: true }
}

const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/
const MUTATION_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

function readNotifyChannels(env: Env): Map<string, string> {
  const raw = env['NOTIFY_CHANNELS']?.trim()
  const channels = new Map<string, string>()
  if (!raw) return channels
  for (const entry of raw.split(',')) {
    const [channel = '', mutation = '', ...rest] = entry.trim().split('=')
    if (!PG_IDENTIFIER.test(channel) || !MUTATION_NAME.test(mutation) || rest.length > 0) {
      throw new ConfigError(
        `NOTIFY_CHANNELS entries must be pg_channel=mutationName (lower-case channel), got "${entry.trim()}"`,
      )
    }
    channels.set(channel, mutation)
  }
  return channels
}

/**
 * Reads and validates the environment. The only place that reads `process.env`.
 * Throws `ConfigError` naming the variable when a value is invalid or contradictory.
 */
export function loadConfig(env: Env = process.env): Config {
  const production = env['NODE_ENV'] === 'production'
  const logLevel = env['LOG_LEVEL'] ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  }
  const databaseUrl = readUrl(env, 'DATABASE_URL')
  if (databaseUrl && !['postgres:', 'postgresql:'].includes(databaseUrl.protocol)) {
    throw new ConfigError(`DATABASE_URL must be a postgres:// URL, got "${databaseUrl.protocol}"`)
  }
  const redisUrl = readUrl(env, 'REDIS_URL')
  if (redisUrl && !['redis:', 'rediss:'].includes(redisUrl.protocol)) {
    throw new ConfigError(
      `REDIS_URL must be a redis:// or rediss:// URL, got "${redisUrl.protocol}"`,
    )
  }
  const notifyChannels = readNotifyChannels(env)
  if (notifyChannels.size > 0 && !databaseUrl) {
    throw new ConfigError(
      'NOTIFY_CHANNELS needs DATABASE_URL (the embedded database cannot be notified by other apps)',
    )
  }
  const metricsToken = env['METRICS_TOKEN'] || undefined
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,}$/.test(metricsToken)) {
    throw new ConfigError(
      'METRICS_TOKEN must be at least 16 printable characters without spaces (it is sent as a bearer token)',
    )
  }
  const dataDir = env['DATA_DIR'] ?? './data'
  const keys = readKeys(env, production)
  return Object.freeze({
    production,
    port: readInt(env, 'PORT', 8080, 0, 65_535),
    host: env['HOST'] ?? '0.0.0.0',
    dataDir: dataDir.startsWith('memory://') ? dataDir : resolve(dataDir),
    databaseUrl: databaseUrl?.toString(),
    databasePoolSize: readInt(env, 'DATABASE_POOL_SIZE', 10, 1, 1_000),
    redisUrl: redisUrl?.toString(),
    redisPrefix: env['REDIS_PREFIX'] ?? 'switchboard:',
    jwt: Object.freeze({
      keys,
      issuer: env['JWT_ISSUER'] || undefined,
      audience: env['JWT_AUDIENCE'] || undefined,
    }),
    statsIntervalMs: readInt(env, 'STATS_INTERVAL_MS', 250, 10, 60_000),
    drainTimeoutMs: readInt(env, 'DRAIN_TIMEOUT_MS', 10_000, 0, 600_000),
    notifyChannels,
    retentionMaxAgeHours: readInt(env, 'RETENTION_MAX_AGE_HOURS', 168, 1, 87_600),
    retentionMaxEvents: readInt(env, 'RETENTION_MAX_EVENTS', 10_000, 1, 100_000_000),
    retentionIntervalMs: readInt(env, 'RETENTION_INTERVAL_MS', 60_000, 100, 86_400_000),
    idempotencyWindowMs: readInt(env, 'IDEMPOTENCY_WINDOW_MS', 300_000, 1_000, 86_400_000),
    logLevel,
    metricsToken,
    printDevTokens: !production && keys.kind === 'secret' && keys.ephemeral,
  })
}

/** What `npm run token` needs: the HS256 secret and the optional issuer and audience. */
export interface SigningConfig {
  readonly secret: string
  readonly issuer: string | undefined
  readonly audience: string | undefined
}

/** Reads `JWT_SECRET` (required here), `JWT_ISSUER` and `JWT_AUDIENCE` for minting tokens. */
export function loadSigningConfig(env: Env = process.env): SigningConfig {
  const keys = readKeys({ JWT_SECRET: env['JWT_SECRET'] }, true)
  if (keys.kind !== 'secret') throw new ConfigError('JWT_SECRET must be set to sign a token')
  return Object.freeze({
    secret: keys.secret,
    issuer: env['JWT_ISSUER'] || undefined,
    audience: env['JWT_AUDIENCE'] || undefined,
  })
}
