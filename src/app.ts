import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { renderGraphiQL } from '@graphql-yoga/render-graphiql'
import type { GraphQLError } from 'graphql'
import { createYoga, maskError } from 'graphql-yoga'
import { Redis } from 'ioredis'
import pg from 'pg'
import { Registry } from 'prom-client'
import { mintDevTokens } from './auth/dev-tokens.js'
import { extractToken } from './auth/extract-token.js'
import { createRevocations, refusingRevoked } from './auth/revocations.js'
import { rememberingVerifiedTokens } from './auth/verified-tokens.js'
import { createTokenVerifier } from './auth/verify-token.js'
import type { Config } from './config.js'
import type { Context, Services } from './context.js'
import { createAccessLookups } from './db/access-lookups.js'
import type { Database } from './db/database.js'
import { migrate } from './db/migrate.js'
import { createPgDatabase } from './db/pg-database.js'
import { openPgliteDatabase } from './db/pglite-database.js'
import type { Bus } from './events/bus.js'
import { createFeedHub } from './events/channel-feed.js'
import { createInProcessBus } from './events/in-process-bus.js'
import { createPublishRateLimit } from './events/publish-rate-limit.js'
import { createPublisher } from './events/publisher.js'
import { createRedisBus } from './events/redis-bus.js'
import { createRetention } from './events/retention.js'
import { createNotifyIngester, type NotifyIngester } from './ingest/notify-ingester.js'
import { createNotifyPublish, NOTIFY_INGEST_VIEWER } from './ingest/notify-publish.js'
import { createActivity } from './ops/activity.js'
import { createAdminPageRoutes } from './ops/admin-page.js'
import {
  createDrain,
  drainingPublisher,
  isStreamRequest,
  refuseWhileDraining,
} from './ops/drain.js'
import { createHealthRoutes } from './ops/health.js'
import type { Logger } from './ops/logger.js'
import { createMetrics } from './ops/metrics.js'
import { createMetricsRoute } from './ops/metrics-route.js'
import { createRateMeter, meterPublishedEvents } from './ops/rate-meter.js'
import { createRecentProblems, useRecentProblems } from './ops/recent-problems.js'
import { useOperationMetrics } from './ops/use-operation-metrics.js'
import { VERSION } from './ops/version.js'
import { schema } from './schema/index.js'
import {
  createConnectionRegistry,
  type TrackedSubscription,
} from './transport/connection-registry.js'
import {
  attachGraphqlWs,
  type WebSocketContextParts,
  WS_CLOSE,
  type WsTransport,
} from './transport/graphql-ws.js'
import { createHttpServer } from './transport/http-server.js'
import { createOriginPolicy } from './transport/origins.js'
import { queryLimitPlugins } from './transport/query-limits.js'
import { createInProcessQuotas, type Quotas } from './transport/quotas.js'
import { createRedisQuotas } from './transport/redis-quotas.js'
import { useSseCursors } from './transport/sse-result-processor.js'

const GRAPHQL_PATH = '/graphql'

/** A built, not yet listening, Switchboard instance. */
export interface App {
  /** Listens on the configured host and port; resolves with the bound address. */
  start(): Promise<{ port: number; url: string }>
  /**
   * Drains, then closes: refuses new connections and requests (readiness turns 503), lets
   * in-flight requests and publishes finish, closes WebSockets with 1001 so clients reconnect
   * elsewhere, ends SSE streams, then closes the bus and the database. Calling it again
   * returns the same promise. Bounding its duration is the caller's job (`DRAIN_TIMEOUT_MS`).
   */
  stop(): Promise<void>
  /** Dev tokens when the secret is ephemeral (development), else undefined. */
  readonly devTokens: { admin: string; service: string } | undefined
}

// Tokens verified over HTTP and trusted for a minute without another signature check.
const VERIFIED_TOKENS_REMEMBERED = 1_000
const VERIFIED_TOKEN_TRUST_MS = 60_000
const CONNECT_TIMEOUT = 10_000 // ms to reach PostgreSQL or Redis, at start and per connection
// ms a statement may wait for its answer. Switchboard's statements take milliseconds; this bounds
// a request stuck on a connection whose peer vanished without a reset (a cut network), and
// leaves room for a migration waiting on another instance's migration lock.
const QUERY_TIMEOUT = 20_000

/** What a WebSocket subscription's services hold beside the shared ones (see `watchedServices`). */
interface WatchedServices {
  tracked: TrackedSubscription
  watchedBus: Bus | undefined
}

/** Opens the configured database: PostgreSQL through `pg` when `DATABASE_URL` is set, else PGlite. */
async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (!config.databaseUrl) return openPgliteDatabase(config.dataDir)
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.databasePoolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT,
    query_timeout: QUERY_TIMEOUT,
    // Lets the OS notice a dead peer on idle pooled connections, which would otherwise be
    // handed out and fail only on use.
    keepAlive: true,
  })
  // An idle client's connection error is emitted on the pool; unhandled it would crash us.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection failed'))
  return createPgDatabase(pool, {
    onUnavailable: (err) => logger.warn({ err }, 'database unavailable'),
  })
}

/**
 * Opens the configured bus: Redis PubSub when `REDIS_URL` is set (resolves once both
 * connections are up), else in process. Its `close` also releases the connections.
 */
async function openBus(config: Config, logger: Logger): Promise<Bus> {
  if (!config.redisUrl) return createInProcessBus()
  const options = { connectTimeout: CONNECT_TIMEOUT, lazyConnect: true }
  // Publishing while Redis is down must fail at once (the log keeps the event), not queue.
  const publisher = new Redis(config.redisUrl, {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  })
  const subscriber = new Redis(config.redisUrl, options)
  for (const client of [publisher, subscriber]) {
    client.on('error', (err) => logger.warn({ err }, 'redis connection error'))
  }
  await Promise.all([publisher.connect(), subscriber.connect()])
  const bus = createRedisBus({ publisher, subscriber, prefix: config.redisPrefix })
  return {
    ...bus,
    async close() {
      await bus.close()
      publisher.disconnect()
      subscriber.disconnect()
    },
  }
}

/**
 * Connection and subscription quotas: counted across the cluster in Redis when `REDIS_URL` is
 * set (on a connection of their own), else in process. Its `close` releases the connection.
 */
async function openQuotas(config: Config, logger: Logger): Promise<Quotas> {
  if (!config.redisUrl) return createInProcessQuotas()
  // A quota check must not wait for Redis to come back: it fails open at once instead.
  const redis = new Redis(config.redisUrl, {
    connectTimeout: CONNECT_TIMEOUT,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  })
  redis.on('error', (err) => logger.warn({ err }, 'redis connection error (quotas)'))
  await redis.connect()
  const quotas = createRedisQuotas({
    redis,
    prefix: config.redisPrefix,
    onError: (err) => logger.warn({ err }, 'quota check failed; allowing'),
  })
  return {
    claim: (keys, holder) => quotas.claim(keys, holder),
    async close() {
      await quotas.close()
      redis.disconnect()
    },
  }
}

/**
 * The PostgreSQL NOTIFY ingester when `NOTIFY_CHANNELS` is set: each payload runs the mapped
 * publish mutation through the schema. Throws `ConfigError` for a mapping that cannot work.
 */
function createIngester(
  config: Config,
  logger: Logger,
  context: () => Context,
): NotifyIngester | undefined {
  if (!config.databaseUrl || config.notifyChannels.size === 0) return undefined
  const executePublish = createNotifyPublish({ schema, channels: config.notifyChannels, context })
  return createNotifyIngester({
    connectionString: config.databaseUrl,
    channels: [...config.notifyChannels.keys()],
    executePublish,
    logger,
  })
}

/**
 * Wires the parts of one instance: database (migrated), bus, publisher, Yoga over HTTP and
 * SSE, graphql-ws, and the health routes. Nothing listens until `start()`.
 */
export async function buildApp(config: Config, logger: Logger): Promise<App> {
  // Before anything opens, so that a bad NOTIFY_CHANNELS mapping fails start-up cleanly.
  const ingester = createIngester(config, logger, () => ({
    viewer: NOTIFY_INGEST_VIEWER,
    authRefusal: undefined,
    lastEventId: undefined,
    services,
  }))
  const db = await openDatabase(config, logger)
  const applied = await migrate(db)
  if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated')
  const bus = await openBus(config, logger)
  const quotas = await openQuotas(config, logger)
  const drain = createDrain()
  const retention = createRetention({
    db,
    maxAgeHours: config.retentionMaxAgeHours,
    maxEvents: config.retentionMaxEvents,
    idempotencyWindowMs: config.idempotencyWindowMs,
    intervalMs: config.retentionIntervalMs,
    logger,
  })
  const metrics = createMetrics({ registry: new Registry(), db, bus })
  const publishedEvents = createRateMeter()
  const revocations = createRevocations({
    db,
    bus,
    // Revoked tokens end their connections on every instance; the client reconnects with a
    // fresh token (4403 is one the graphql-ws client retries).
    onRevoked: (sub, reason) =>
      services.connections.disconnectUser(
        sub,
        `Forbidden: token revoked: ${reason}`,
        WS_CLOSE.TOKEN_EXPIRED,
      ),
  })
  const services: Services = {
    db,
    bus,
    revocations,
    feeds: createFeedHub({ db, bus }),
    publisher: drainingPublisher(
      drain,
      createPublisher({
        db,
        bus: meterPublishedEvents(bus, publishedEvents),
        onBusError: (err) => logger.error({ err }, 'bus publish failed; events stay in the log'),
        idempotencyWindowMs: config.idempotencyWindowMs,
        metrics,
      }),
    ),
    lookups: createAccessLookups(db),
    statsIntervalMs: config.statsIntervalMs,
    activity: createActivity(),
    metrics,
    connections: createConnectionRegistry(),
    problems: createRecentProblems(),
    publishedEvents,
    publishRate: createPublishRateLimit({
      perSecond: config.limits.publishPerSecond,
      burst: config.limits.publishBurst,
      // Rows a database trigger announced are committed already; refusing them would lose them.
      exempt: (viewer) => viewer === NOTIFY_INGEST_VIEWER,
    }),
  }
  const verifySignature = createTokenVerifier(config.jwt)
  const verifyToken = refusingRevoked(verifySignature, revocations)
  // Every HTTP request carries its token (a backend publishes with the same one all day);
  // a WebSocket verifies once per connection, so only HTTP remembers verified tokens.
  const verifyRequestToken = refusingRevoked(
    rememberingVerifiedTokens(verifySignature, {
      capacity: VERIFIED_TOKENS_REMEMBERED,
      maxAgeMs: VERIFIED_TOKEN_TRUST_MS,
    }),
    revocations,
  )
  const keys = config.jwt.keys
  const devTokens =
    config.printDevTokens && keys.kind === 'secret' ? await mintDevTokens(keys.secret) : undefined

  /** Yoga's masking (a generic message for unexpected errors), logging what it hides. */
  const maskUnexpected = (error: unknown, message: string, isDev?: boolean): Error => {
    const masked = maskError(error, message, isDev)
    if (masked !== error) logger.error({ err: error }, 'unexpected error')
    return masked
  }
  const originPolicy = createOriginPolicy(config.allowedOrigins)
  /**
   * `services` whose bus lists the channels a WebSocket subscription subscribes to itself
   * (stats); made on first use, as most subscriptions follow their channels through the feeds.
   * Every subscription's services share one prototype holding the `bus` accessor, so each is a
   * small object of the same shape (an accessor of its own would give each a shape of its own).
   */
  const watchedPrototype = Object.create(services, {
    bus: {
      get(this: WatchedServices): Bus {
        this.watchedBus ??= this.tracked.watch(services.bus)
        return this.watchedBus
      },
    },
  }) as Services
  const watchedServices = (tracked: TrackedSubscription): Services => {
    const watched = Object.create(watchedPrototype) as WatchedServices
    watched.tracked = tracked
    watched.watchedBus = undefined
    return watched as unknown as Services
  }
  /** The context of an operation over a WebSocket: the connection's viewer, no request. */
  const webSocketContext = ({
    viewer,
    trackedSubscription,
    fanout,
    connection,
  }: WebSocketContextParts): Context => ({
    viewer,
    authRefusal: undefined,
    lastEventId: undefined,
    // A subscription lists the channels it subscribes to through the bus itself.
    services: trackedSubscription ? watchedServices(trackedSubscription) : services,
    fanout,
    connection,
  })
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    logging: logger,
    cors: originPolicy.cors,
    // GraphiQL with its assets inlined: Yoga's default page loads them from a CDN, which a
    // developer offline or a locked-down network cannot reach.
    renderGraphiQL,
    graphiql: {
      title: 'Switchboard',
      ...(devTokens
        ? { headers: JSON.stringify({ Authorization: `Bearer ${devTokens.admin}` }) }
        : {}),
    },
    maskedErrors: { maskError: maskUnexpected },
    plugins: [
      ...queryLimitPlugins(config.limits.query),
      useSseCursors({ metrics }),
      useOperationMetrics(metrics),
      useRecentProblems(services.problems),
    ],
    context: async (initial): Promise<Context> => {
      // Queries and mutations over graphql-ws (its subscriptions do not execute through Yoga).
      if ('webSocket' in initial)
        return webSocketContext(initial['webSocket'] as WebSocketContextParts)
      const request = initial['request'] as Request
      const token = extractToken({
        authorizationHeader: request.headers.get('authorization'),
        url: request.url,
      })
      const lastEventId = request.headers.get('last-event-id') ?? undefined
      if (!token) return { viewer: null, authRefusal: undefined, lastEventId, services }
      try {
        const viewer = await verifyRequestToken(token)
        return { viewer, authRefusal: undefined, lastEventId, services }
      } catch (error) {
        metrics.authRefusals.inc({ code: 'UNAUTHENTICATED' })
        return { viewer: null, authRefusal: error as Context['authRefusal'], lastEventId, services }
      }
    },
  })

  let ws: WsTransport | undefined
  const health = createHealthRoutes({
    version: VERSION,
    counts: () => ({
      connections: ws?.connectionCount() ?? 0,
      subscriptions: services.activity.openStreams(),
    }),
    checks: { database: () => db.ping(), bus: () => bus.ping() },
    draining: () => drain.draining,
  })
  const serveMetrics = createMetricsRoute({
    registry: metrics.registry,
    token: config.metricsToken,
  })
  const adminPage = createAdminPageRoutes()
  const server: Server = await createHttpServer(config.tls, (req, res) => {
    health(req, res)
      .then(async (handled) => {
        if (handled || (await serveMetrics(req, res)) || adminPage(req, res)) return
        if (drain.draining) return refuseWhileDraining(res)
        // Streams (SSE) only end when the client leaves: shutdown ends them, not waits.
        if (!isStreamRequest(req)) res.once('close', drain.begin())
        return yoga.handle(req, res)
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'request failed')
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
  })
  ws = attachGraphqlWs({
    server,
    path: GRAPHQL_PATH,
    yoga,
    verifyToken,
    feeds: services.feeds,
    limits: config.limits,
    quotas,
    allowsOrigin: originPolicy.allows,
    webSocketContext,
    maskError: (error) => maskUnexpected(error, 'Unexpected error.', false) as GraphQLError,
    logger,
    metrics,
    registry: services.connections,
    problems: services.problems,
  })

  let stopping: Promise<void> | undefined
  return {
    devTokens,
    async start() {
      await revocations.start()
      await ingester?.start()
      retention.start()
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(config.port, config.host, () => {
          server.off('error', reject)
          const { port } = server.address() as AddressInfo
          const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host
          const scheme = config.tls ? 'https' : 'http'
          resolve({ port, url: `${scheme}://${host}:${port}${GRAPHQL_PATH}` })
        })
      })
    },
    stop() {
      stopping ??= (async () => {
        const idle = drain.start()
        // No new connections from here on: a load balancer tries another instance.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        await ingester?.stop()
        await idle
        await ws?.close()
        server.closeAllConnections()
        await closed
        // Publishes WebSocket clients sent before their socket closed.
        await drain.start()
        await retention.stop()
        revocations.stop()
        await quotas.close()
        await bus.close()
        await db.close()
      })()
      return stopping
    },
  }
}
