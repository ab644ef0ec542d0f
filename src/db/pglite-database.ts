import { PGlite, TransactionAbortedError } from '@electric-sql/pglite'
import type { Database, Queryable } from './database.js'
import { createLock, createPgliteSession, type PgliteSessionOptions } from './pglite-session.js'

/**
 * Opens the embedded PostgreSQL (PGlite) in `dataDir` (created when missing; `memory://` keeps
 * nothing). PGlite has one session, so a transaction holds it from BEGIN to COMMIT or ROLLBACK
 * and every other statement or transaction waits for it. Statements go through
 * `createPgliteSession` (prepared once per SQL text, one call into PGlite each); the data
 * directory is synced to disk after each statement outside a transaction and after each COMMIT,
 * as PGlite itself does. `options` tune the statement cache.
 */
export async function openPgliteDatabase(
  dataDir: string,
  options: PgliteSessionOptions = {},
): Promise<Database> {
  const pglite = await PGlite.create(dataDir)
  const session = createPgliteSession(pglite, options)
  const exclusive = createLock()

  async function transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    await session.command('begin', { syncToFs: false })
    let open = true
    const tx: Queryable = {
      query<Row>(sql: string, params: readonly unknown[] = []) {
        if (!open) return Promise.reject(new Error('Transaction is closed'))
        return session.query<Row>(sql, params, true)
      },
    }
    try {
      const result = await work(tx)
      open = false
      // A transaction a failed statement aborted is rolled back by COMMIT, and says so.
      if ((await session.command('commit', { syncToFs: true })) === 'ROLLBACK') {
        throw Object.assign(new TransactionAbortedError(), { query: 'COMMIT' })
      }
      return result
    } catch (error) {
      if (open) {
        open = false
        await session.command('rollback', { syncToFs: false })
      }
      throw error
    }
  }

  return {
    engine: 'pglite',
    query<Row>(sql: string, params: readonly unknown[] = []) {
      return exclusive(() => session.query<Row>(sql, params, false))
    },
    transaction: (work) => exclusive(() => transaction(work)),
    async ping() {
      await exclusive(() => session.query('select 1', [], false))
    },
    // Once statements queued before it have run: PGlite's own locks do not see them.
    close: () => exclusive(() => pglite.close()),
  }
}
