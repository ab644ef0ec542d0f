/**
 * The PostgreSQL + Redis variant's stores: a fresh database on the machine's PostgreSQL and a
 * Redis key prefix of its own, both removed afterwards.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'

/** Where the stores live (`BENCH_POSTGRES_URL`, `BENCH_REDIS_URL` override the defaults). */
export interface StoreUrls {
  /** A PostgreSQL URL of a role that may create databases. */
  readonly postgresAdminUrl: string
  readonly redisUrl: string
}

/** A database and a prefix for one server start. */
export interface BenchStores {
  /** `DATABASE_URL`, `REDIS_URL`, `REDIS_PREFIX`. */
  readonly env: Readonly<Record<string, string>>
  /** Drops the database and deletes the prefix's keys. */
  remove(): Promise<void>
}

/** Whether both PostgreSQL and Redis answer; the reason when not. */
export async function storesAvailable({
  postgresAdminUrl,
  redisUrl,
}: StoreUrls): Promise<string | null> {
  const client = new pg.Client({
    connectionString: postgresAdminUrl,
    connectionTimeoutMillis: 3_000,
  })
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  try {
    await client.connect()
    await client.query('select 1')
    await redis.connect()
    await redis.ping()
    return null
  } catch (error) {
    return (error as Error).message
  } finally {
    await client.end().catch(() => undefined)
    redis.disconnect()
  }
}

/** Creates a fresh database and picks a Redis prefix. */
export async function createBenchStores({
  postgresAdminUrl,
  redisUrl,
}: StoreUrls): Promise<BenchStores> {
  const name = `switchboard_bench_${randomBytes(6).toString('hex')}`
  const prefix = `switchboard-bench:${randomUUID()}:`
  const admin = new pg.Client({ connectionString: postgresAdminUrl })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(postgresAdminUrl)
  url.pathname = `/${name}`
  return {
    env: { DATABASE_URL: url.toString(), REDIS_URL: redisUrl, REDIS_PREFIX: prefix },
    async remove() {
      const dropper = new pg.Client({ connectionString: postgresAdminUrl })
      await dropper.connect()
      try {
        await dropper.query(`drop database if exists ${name} with (force)`)
      } finally {
        await dropper.end()
      }
      const redis = new Redis(redisUrl)
      try {
        let cursor = '0'
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
          if (keys.length > 0) await redis.del(...keys)
          cursor = next
        } while (cursor !== '0')
      } finally {
        redis.disconnect()
      }
    },
  }
}
