import type pg from 'pg'
import { databaseUnavailable, ErrorCode } from '../errors.js'
import type { Database, Queryable } from './database.js'

export interface PgDatabaseOptions {
  /**
   * Told about each failure to reach PostgreSQL (the original error, before it is rethrown as
   * `DATABASE_UNAVAILABLE`), so the server log keeps the detail clients never see. Default: no-op.
   */
  readonly onUnavailable?: (error: unknown) => void
}

// Node socket errors meaning the server cannot be reached or the connection broke.
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])
// SQLSTATEs: admin_shutdown, crash_shutdown, cannot_connect_now (starting up or in recovery),
// too_many_connections. Class 08 (connection exception) is matched by prefix.
const SERVER_UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300'])
// What pg and pg-pool throw, without a code, when a connection ends, times out or is unusable.
const CONNECTION_MESSAGES = [
  /^Connection terminated/, // unexpectedly, or due to connection timeout
  /^timeout exceeded when trying to connect$/,
  /^timeout expired$/,
  /^Query read timeout$/,
  /is not queryable$/, // after a connection error, or once the client closed
]

/** True when `error` (or what caused it) says the connection, not the statement, failed. */
function isConnectionError(error: unknown, depth = 0): boolean {
  if (depth > 3 || typeof error !== 'object' || error === null) return false
  const { code, message, cause, errors } = error as {
    code?: unknown
    message?: unknown
    cause?: unknown
    errors?: unknown
  }
  if (typeof code === 'string') {
    if (SOCKET_ERROR_CODES.has(code) || SERVER_UNAVAILABLE_CODES.has(code)) return true
    if (/^08[0-9A-Z]{3}$/.test(code)) return true
  }
  if (typeof message === 'string' && CONNECTION_MESSAGES.some((pattern) => pattern.test(message)))
    return true
  // Connecting to a name with several addresses fails with an AggregateError of each attempt.
  if (Array.isArray(errors) && errors.some((inner) => isConnectionError(inner, depth + 1)))
    return true
  return isConnectionError(cause, depth + 1)
}

/** True for an error this module already turned into `DATABASE_UNAVAILABLE`. */
function isUnavailable(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { extensions?: { code?: unknown } }).extensions?.code ===
      ErrorCode.DATABASE_UNAVAILABLE
  )
}

/**
 * Wraps a `pg` pool (made and configured by the caller) as a `Database`. A failure to reach
 * PostgreSQL (refused, reset or timed-out connection, server shutting down) rejects with
 * `DATABASE_UNAVAILABLE`, the original error kept as its `cause`; any other error is rethrown
 * as is. A transaction whose connection failed is not rolled back (the server does that when
 * the connection ends) and the connection is dropped rather than reused. `close()` ends the
 * pool.
 */
export function createPgDatabase(
  pool: pg.Pool,
  { onUnavailable = () => {} }: PgDatabaseOptions = {},
): Database {
  const translate = (error: unknown): unknown => {
    if (isUnavailable(error) || !isConnectionError(error)) return error
    onUnavailable(error)
    const unavailable = databaseUnavailable()
    unavailable.cause = error
    return unavailable
  }
  const asQueryable = (target: pg.Pool | pg.PoolClient): Queryable => ({
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      try {
        const result = await target.query(sql, params as unknown[])
        return result.rows as Row[]
      } catch (error) {
        throw translate(error)
      }
    },
  })
  return {
    engine: 'postgres',
    query: asQueryable(pool).query,
    async transaction(work) {
      const client = await pool.connect().catch((error: unknown) => {
        throw translate(error)
      })
      // A checked-out client has no 'error' listener: a connection lost between two statements
      // would be an unhandled 'error' event and end the process. Its next query fails anyway.
      let lost = false
      const onError = () => {
        lost = true
      }
      client.on('error', onError)
      const tx = asQueryable(client)
      try {
        await tx.query('begin')
        const result = await work(tx)
        await tx.query('commit')
        return result
      } catch (error) {
        if (isUnavailable(error)) lost = true
        if (!lost) await client.query('rollback').catch(() => (lost = true))
        throw error
      } finally {
        client.off('error', onError)
        // A truthy argument makes the pool destroy the client instead of reusing it.
        client.release(lost)
      }
    },
    async ping() {
      // Not through `translate`: readiness probes would log every failure of a known outage.
      await pool.query('select 1')
    },
    close: () => pool.end(),
  }
}
