import type pg from 'pg'
import type { Database, Queryable } from './database.js'

/**
 * Wraps a `pg` pool (made and configured by the caller) as a `Database`. `close()` ends the
 * pool.
 */
export function createPgDatabase(pool: pg.Pool): Database {
  const asQueryable = (target: pg.Pool | pg.PoolClient): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const result = await target.query(sql, params as unknown[])
      return result.rows as Row[]
    },
  })
  return {
    engine: 'postgres',
    query: asQueryable(pool).query,
    async transaction(work) {
      const client = await pool.connect()
      try {
        await client.query('begin')
        const result = await work(asQueryable(client))
        await client.query('commit')
        return result
      } catch (error) {
        await client.query('rollback').catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
    async ping() {
      await pool.query('select 1')
    },
    close: () => pool.end(),
  }
}
