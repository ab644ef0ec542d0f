import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'

/** How tokens are verified: a shared HS256 secret or a remote JWKS (RS256/ES256). */
export type KeySource =
  | { kind: 'secret'; secret: string; ephemeral: boolean }
  | { kind: 'jwks'; url: URL }

/** Caps on one GraphQL document, checked on every transport before it runs; 0 turns one off. */
export interface QueryLimits {
  /** Deepest field nesting (`QUERY_MAX_DEPTH`, default 12); introspection's `__schema` is exempt. */
  readonly maxDepth: number
  /** Aliased fields in one operation (`QUERY_MAX_ALIASES`, default 15; `__typename` is free). */
  readonly maxAliases: number
  /** Directives in one operation (`QUERY_MAX_DIRECTIVES`, default 10). */
  readonly maxDirectives: number
  /** Lexical tokens in the document, counted while parsing (`QUERY_MAX_TOKENS`, default 2000). */
  readonly maxTokens: number
  /**
   * Estimated cost of one operation (`QUERY_MAX_COST`, default 30000): each field costs 1, each
   * object 2, nested fields weigh 1.5 times more per level and a literal `first`/`last`
   * multiplies its field; introspection's `__schema` is exempt. The default lets any one root
   * field through at its largest page with every field selected (the largest,
   * `adminConnections(first: 500)`, costs about 29500) and refuses aliasing several such pages.
   */
  readonly maxCost: number
}

/** Limits that bound what one client may ask of an instance. */
export interface Limits {
  /** Per-document caps (depth, aliases, directives, tokens, cost) on HTTP, SSE and WebSocket. */
  readonly query: QueryLimits
  /**
   * Sustained publishes per second per token subject (`PUBLISH_RATE_PER_SECOND`, default 200;
   * 0 turns the limit off). Counted per instance. Over it a publish fails with `RATE_LIMITED`.
   */
  readonly publishPerSecond: number
  /** Publishes a token subject may make at once before the rate applies (`PUBLISH_RATE_BURST`, default 400). */
  readonly publishBurst: number
  /**
   * Open WebSockets per instance (`MAX_CONNECTIONS`, default 20000; 0 = no limit). Past it new
   * sockets are closed with 1013 ("Try again later").
   */
  readonly maxConnections: number
  /** Open WebSockets per token subject, cluster-wide with `REDIS_URL` (`MAX_CONNECTIONS_PER_USER`, default 50). */
  readonly maxConnectionsPerUser: number
  /** Open WebSockets per scope (tenant), cluster-wide (`MAX_CONNECTIONS_PER_TENANT`, default 20000). */
  readonly maxConnectionsPerTenant: number
  /** Subscriptions one WebSocket may run at once (`MAX_SUBSCRIPTIONS_PER_CONNECTION`, default 100). */
  readonly maxSubscriptionsPerConnection: number
  /** Subscriptions per scope (tenant), cluster-wide (`MAX_SUBSCRIPTIONS_PER_TENANT`, default 100000). */
  readonly maxSubscriptionsPerTenant: number
  /** How long a WebSocket may take to send `connection_init` (`WS_INIT_TIMEOUT_MS`, default 10000). */
  readonly initTimeoutMs: number
  /** Largest client message on a WebSocket (`WS_MAX_MESSAGE_BYTES`, default 65536); bigger closes with 1009. */
  readonly maxMessageBytes: number
  /** Sustained client-to-server messages per second per WebSocket (`WS_MESSAGE_RATE_PER_SECOND`, default 50). */
  readonly messagesPerSecond: number
  /** Client messages a WebSocket may send at once before the rate applies (`WS_MESSAGE_RATE_BURST`, default 100). */
  readonly messageBurst: number
  /**
   * Bytes a WebSocket's send buffer may hold (`WS_MAX_BUFFERED_BYTES`, default 1048576); a
   * subscriber that reads slower is dropped with 4008 and resumes from its cursor.
   */
  readonly maxBufferedBytes: number
  /**
   * Interval of WebSocket ping frames (`KEEPALIVE_INTERVAL_MS`, default 15000); a peer that
   * does not answer is terminated within twice this.
   */
  readonly keepAliveMs: number
}

/** PEM files that turn on HTTPS and WSS (`TLS_CERT_FILE` and `TLS_KEY_FILE`, both or neither). */
export interface TlsFiles {
  /** Certificate chain, PEM (`TLS_CERT_FILE`), as an absolute path. */
  readonly certFile: string
  /** Private key, PEM (`TLS_KEY_FILE`), as an absolute path. */
  readonly keyFile: string
}

/** The whole, validated configuration of one Switchboard instance. */
export interface Config {
  /** `NODE_ENV === 'production'`: no dev tokens; a key and `ALLOWED_ORIGINS` are mandatory. */
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
  /** Query, publish and WebSocket limits (see each field for its variable and default). */
  readonly limits: Limits
  /**
   * Browser origins allowed by CORS and the WebSocket `Origin` check (`ALLOWED_ORIGINS`, a
   * comma-separated list of `scheme://host[:port]`; `:*` allows any port, `*` any origin).
   * Default outside production: localhost, 127.0.0.1 and [::1] on any port; in production it
   * must be set. Requests without an `Origin` (backends, CLIs) are not concerned.
   */
  readonly allowedOrigins: readonly string[]
  /** Serve HTTPS and WSS with these files; undefined (default) serves plain HTTP and WS. */
  readonly tls: TlsFiles | undefined
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

/** What `ALLOWED_ORIGINS` defaults to outside production: the local machine, any port. */
export const LOCAL_ORIGINS: readonly string[] = Object.freeze(
  ['localhost', '127.0.0.1', '[::1]'].flatMap((host) => [`http://${host}:*`, `https://${host}:*`]),
)

// scheme://host[:port|:*], host a name, an IPv4 address or a bracketed IPv6 address.
const ORIGIN_PATTERN = /^(https?):\/\/([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}|\*))?$/

function readAllowedOrigins(env: Env, production: boolean): readonly string[] {
  const raw = env['ALLOWED_ORIGINS']?.trim()
  if (!raw) {
    if (production) {
      throw new ConfigError(
        'NODE_ENV=production requires ALLOWED_ORIGINS (comma-separated origins browsers may call from, or * for any)',
      )
    }
    return LOCAL_ORIGINS
  }
  const origins = raw.split(',').map((entry) => {
    const origin = entry.trim().toLowerCase().replace(/\/$/, '')
    if (origin === '*') return origin
    const match = ORIGIN_PATTERN.exec(origin)
    if (!match || (match[3] !== undefined && match[3] !== '*' && Number(match[3]) > 65_535)) {
      throw new ConfigError(
        `ALLOWED_ORIGINS entries must be scheme://host[:port] (port may be *) or *, got "${entry.trim()}"`,
      )
    }
    // The origin a browser sends omits the scheme's default port.
    const defaultPort = match[1] === 'https' ? '443' : '80'
    return match[3] === defaultPort ? `${match[1]}://${match[2]}` : origin
  })
  return Object.freeze(origins)
}

function readTls(env: Env): TlsFiles | undefined {
  const certFile = env['TLS_CERT_FILE'] || undefined
  const keyFile = env['TLS_KEY_FILE'] || undefined
  if (!certFile && !keyFile) return undefined
  if (!certFile || !keyFile) {
    throw new ConfigError(
      `set both TLS_CERT_FILE and TLS_KEY_FILE, or neither (only ${certFile ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'} is set)`,
    )
  }
  return Object.freeze({ certFile: resolve(certFile), keyFile: resolve(keyFile) })
}

const MAX_LIMIT = 1_000_000_000

function readLimits(env: Env): Limits {
  const limit = (name: string, fallback: number, min = 1) =>
    readInt(env, name, fallback, min, MAX_LIMIT)
  return Object.freeze({
    query: Object.freeze({
      maxDepth: limit('QUERY_MAX_DEPTH', 12, 0),
      maxAliases: limit('QUERY_MAX_ALIASES', 15, 0),
      maxDirectives: limit('QUERY_MAX_DIRECTIVES', 10, 0),
      maxTokens: limit('QUERY_MAX_TOKENS', 2_000, 0),
      maxCost: limit('QUERY_MAX_COST', 30_000, 0),
    }),
    publishPerSecond: limit('PUBLISH_RATE_PER_SECOND', 200, 0),
    publishBurst: limit('PUBLISH_RATE_BURST', 400),
    maxConnections: limit('MAX_CONNECTIONS', 20_000, 0),
    maxConnectionsPerUser: limit('MAX_CONNECTIONS_PER_USER', 50),
    maxConnectionsPerTenant: limit('MAX_CONNECTIONS_PER_TENANT', 20_000),
    maxSubscriptionsPerConnection: limit('MAX_SUBSCRIPTIONS_PER_CONNECTION', 100),
    maxSubscriptionsPerTenant: limit('MAX_SUBSCRIPTIONS_PER_TENANT', 100_000),
    initTimeoutMs: limit('WS_INIT_TIMEOUT_MS', 10_000),
    maxMessageBytes: limit('WS_MAX_MESSAGE_BYTES', 65_536),
    messagesPerSecond: limit('WS_MESSAGE_RATE_PER_SECOND', 50),
    messageBurst: limit('WS_MESSAGE_RATE_BURST', 100),
    maxBufferedBytes: limit('WS_MAX_BUFFERED_BYTES', 1_048_576),
    keepAliveMs: limit('KEEPALIVE_INTERVAL_MS', 15_000),
  })
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
  const allowedOrigins = readAllowedOrigins(env, production)
  const tls = readTls(env)
  const limits = readLimits(env)
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
    limits,
    allowedOrigins,
    tls,
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
