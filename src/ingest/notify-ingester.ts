import pg from 'pg'
import type { Logger } from '../ops/logger.js'
import type { ExecutePublish } from './notify-publish.js'

/** Session-level advisory lock key that elects the one ingesting instance of a database. */
export const INGEST_LOCK_KEY = 0x7377_6264 // "swbd"

/** `application_name` of the listener connection, to find it in `pg_stat_activity`. */
export const INGEST_APPLICATION_NAME = 'switchboard-notify-ingest'

const CONNECT_TIMEOUT = 10_000 // ms
const KEEP_ALIVE_DELAY = 10_000 // ms of silence before TCP keep-alive probes a quiet listener

export interface NotifyIngesterOptions {
  /** PostgreSQL URL for the dedicated listener connection (never a pooled one). */
  readonly connectionString: string
  /** Channels to `LISTEN` to while this instance holds the lock. */
  readonly channels: readonly string[]
  /**
   * Publishes one notification. Notifications are handled one at a time in arrival order; a
   * rejection is logged (warn, with the channel and `extensions.code`) and the notification
   * skipped.
   */
  readonly executePublish: ExecutePublish
  readonly logger: Logger
  /** ms between attempts to take the lock, and before reconnecting a lost connection. Default 1000. */
  readonly retryMs?: number
  /** Advisory lock key; instances sharing it (on one database) ingest one at a time. Default `INGEST_LOCK_KEY`. */
  readonly lockKey?: number
}

/** A background task ingesting PostgreSQL NOTIFY on one instance at a time. */
export interface NotifyIngester {
  /**
   * Starts contending for the lock; resolves once the first attempt settled (lock taken, held
   * elsewhere, or connection failed: failures are logged and retried, never thrown).
   */
  start(): Promise<void>
  /**
   * Stops listening, finishes the notifications already received, then closes the connection,
   * which releases the lock for another instance.
   */
  stop(): Promise<void>
  /** Whether this instance holds the lock and listens right now. */
  ingesting(): boolean
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

/** The `extensions.code` of a publish failure, for the log. */
function codeOf(error: unknown): string {
  const code = (error as { extensions?: { code?: unknown } }).extensions?.code
  return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR'
}

/**
 * Creates the ingester: a dedicated `pg.Client` takes a session-level advisory lock
 * (`pg_try_advisory_lock`) and, while it holds it, LISTENs to `channels`. Other instances
 * retry every `retryMs`; when the holder's session ends (stop, crash, dropped connection) the
 * lock is released and one of them takes over. A lost connection is reopened after `retryMs`.
 */
export function createNotifyIngester({
  connectionString,
  channels,
  executePublish,
  logger,
  retryMs = 1_000,
  lockKey = INGEST_LOCK_KEY,
}: NotifyIngesterOptions): NotifyIngester {
  let stopped = false
  let holding = false
  let queue: Promise<void> = Promise.resolve()
  let loop: Promise<void> | undefined
  let requestStop: () => void = () => {}
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve
  })

  const enqueue = (channel: string, payload: string) => {
    queue = queue
      .then(() => executePublish(channel, payload))
      .catch((error: unknown) => {
        const code = codeOf(error)
        const message = (error as Error).message
        const detail = code === 'INTERNAL_SERVER_ERROR' ? { err: error } : { message }
        logger.warn({ channel, code, ...detail }, 'NOTIFY payload skipped')
      })
  }

  /** One connection's life: contend for the lock, then listen until it is lost or we stop. */
  async function runSession(settled: () => void): Promise<void> {
    const client = new pg.Client({
      connectionString,
      application_name: INGEST_APPLICATION_NAME,
      connectionTimeoutMillis: CONNECT_TIMEOUT,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY,
    })
    let lostReason: unknown
    let connected = false
    const lost = new Promise<void>((resolve) => {
      client.on('error', (error) => {
        lostReason ??= error
        resolve()
      })
      client.on('end', () => {
        lostReason ??= new Error('listener connection ended')
        resolve()
      })
    })
    client.on('notification', ({ channel, payload }) => enqueue(channel, payload ?? ''))
    try {
      await client.connect()
      connected = true
      while (!stopped && lostReason === undefined) {
        const { rows } = await client.query<{ locked: boolean }>(
          'select pg_try_advisory_lock($1) as locked',
          [lockKey],
        )
        if (rows[0]?.locked) {
          for (const channel of channels) {
            await client.query(`listen ${client.escapeIdentifier(channel)}`)
          }
          holding = true
          logger.info({ channels }, 'ingesting PostgreSQL NOTIFY on this instance')
          settled()
          await Promise.race([lost, stopRequested])
        } else {
          settled()
          await Promise.race([lost, stopRequested, sleep(retryMs)])
        }
      }
      if (lostReason !== undefined && !stopped) throw lostReason
    } finally {
      if (holding) logger.info('stopped ingesting PostgreSQL NOTIFY')
      holding = false
      // Notifications already delivered reached no other instance: publish them before the
      // lock (released with the session) lets another instance take over.
      if (connected && lostReason === undefined)
        await client.query('unlisten *').catch(() => undefined)
      await queue
      await client.end().catch(() => undefined)
    }
  }

  async function run(settled: () => void): Promise<void> {
    while (!stopped) {
      try {
        await runSession(settled)
      } catch (err) {
        logger.warn({ err }, 'NOTIFY listener connection lost; reconnecting')
        settled()
      }
      if (!stopped) await Promise.race([stopRequested, sleep(retryMs)])
    }
    settled()
  }

  return {
    start() {
      if (loop) throw new Error('notify ingester already started')
      return new Promise<void>((resolve) => {
        loop = run(resolve)
      })
    },
    async stop() {
      stopped = true
      requestStop()
      await loop
    },
    ingesting: () => holding,
  }
}
