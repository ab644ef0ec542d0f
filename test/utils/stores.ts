import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { REDIS_TEST_URL, testRedisPrefix } from './services.js'

/**
 * Which engines the servers of this test run use. `TEST_STACK=postgres` runs every suite on
 * the machine's PostgreSQL (a database of its own per store) and Redis (a channel prefix of
 * its own per store); the default is the embedded stack (PGlite, in-process bus).
 */
export const TEST_STACK: 'embedded' | 'postgres' =
  process.env['TEST_STACK'] === 'postgres' ? 'postgres' : 'embedded'

/** The machine's PostgreSQL, as an administrator that may create databases. */
export const POSTGRES_ADMIN_URL =
  process.env['POSTGRES_TEST_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Where one or more servers keep their state; `remove()` deletes it for good. */
export interface TestStore {
  /** Environment that points a server at this store. */
  readonly env: Readonly<Record<string, string>>
  remove(): Promise<void>
}

/** A new, empty PostgreSQL database on the machine's server; `remove()` drops it. */
export async function makePostgresDatabase(): Promise<{ url: string; remove(): Promise<void> }> {
  const name = `switchboard_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async remove() {
      const dropper = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
      await dropper.connect()
      try {
        await dropper.query(`drop database if exists ${name} with (force)`)
      } finally {
        await dropper.end()
      }
    },
  }
}

/**
 * A store for the current `TEST_STACK`. `persistent` (embedded stack only) puts PGlite in a
 * temporary directory rather than memory, for tests that restart a server on the same data.
 */
export async function makeTestStore({ persistent = false } = {}): Promise<TestStore> {
  if (TEST_STACK === 'postgres') {
    const database = await makePostgresDatabase()
    return {
      env: {
        DATABASE_URL: database.url,
        REDIS_URL: REDIS_TEST_URL,
        REDIS_PREFIX: testRedisPrefix(),
      },
      remove: database.remove,
    }
  }
  if (!persistent) return { env: { DATA_DIR: 'memory://' }, remove: async () => {} }
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-test-'))
  return { env: { DATA_DIR: dir }, remove: () => rm(dir, { recursive: true, force: true }) }
}
