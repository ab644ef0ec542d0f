import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'

/** The machine's Redis; `REDIS_TEST_URL` overrides it. */
export const REDIS_TEST_URL = process.env['REDIS_TEST_URL'] ?? 'redis://127.0.0.1:6379'

/**
 * Whether the shared Redis answers. Under `CI=true` an unreachable Redis throws (a missing
 * service is a failure there); elsewhere it returns false and the suite skips with a message.
 */
export async function redisAvailable(): Promise<boolean> {
  const probe = new Redis(REDIS_TEST_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  try {
    await probe.connect()
    await probe.ping()
    return true
  } catch (error) {
    if (process.env['CI'] === 'true')
      throw new Error(`Redis at ${REDIS_TEST_URL} is required under CI: ${String(error)}`)
    console.warn(`skipping Redis tests: no Redis at ${REDIS_TEST_URL} (${String(error)})`)
    return false
  } finally {
    probe.disconnect()
  }
}

/**
 * Whether the PostgreSQL at `url` answers. Under `CI=true` an unreachable server throws (a
 * missing service is a failure there); elsewhere it returns false and the suite skips with a
 * message.
 */
export async function postgresAvailable(url: string): Promise<boolean> {
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 })
  try {
    await probe.connect()
    await probe.query('select 1')
    return true
  } catch (error) {
    if (process.env['CI'] === 'true')
      throw new Error(`PostgreSQL at ${url} is required under CI: ${String(error)}`)
    console.warn(`skipping PostgreSQL tests: no PostgreSQL at ${url} (${String(error)})`)
    return false
  } finally {
    await probe.end().catch(() => undefined)
  }
}

/** A channel prefix of its own for one test run, so runs sharing the Redis never cross. */
export function testRedisPrefix(): string {
  return `switchboard-test:${randomUUID()}:`
}

/** A publisher/subscriber pair as the app makes them. */
export function redisClients(url = REDIS_TEST_URL): { publisher: Redis; subscriber: Redis } {
  return {
    publisher: new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
    subscriber: new Redis(url),
  }
}
