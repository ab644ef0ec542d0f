import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'

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
