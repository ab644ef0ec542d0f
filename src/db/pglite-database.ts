import { PGlite } from '@electric-sql/pglite'
import type { Database, Queryable } from './database.js'

/**
 * Opens the embedded PostgreSQL (PGlite) in `dataDir` (created when missing; `memory://` keeps
 * nothing). PGlite has one connection, so transactions run one after another.
 */
export async function openPgliteDatabase(dataDir: string): Promise<Database> {
  const pglite = await PGlite.create(dataDir)
  const asQueryable = (target: Pick<PGlite, 'query'>): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const result = await target.query<Row>(sql, params as unknown[])
      return result.rows
    },
  })
  const root = asQueryable(pglite)
  return {
    engine: 'pglite',
    query: root.query,
    transaction: (work) => pglite.transaction((tx) => work(asQueryable(tx))),
    async ping() {
      await pglite.query('select 1')
    },
    close: () => pglite.close(),
  }
}
