/** Something SQL can be sent to: the database itself or an open transaction. */
export interface Queryable {
  /** Runs one parameterised statement (`$1`, `$2`, ...) and returns its rows. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>
}

/**
 * The one interface the rest of Switchboard sees, whether PGlite or PostgreSQL sits behind it.
 * Both speak the same SQL, so migrations and projections are written once.
 */
export interface Database extends Queryable {
  /** `pglite` (embedded) or `postgres`. */
  readonly engine: 'pglite' | 'postgres'
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws
   * (the error is rethrown).
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>
  /** Closes connections; pending queries finish first. */
  close(): Promise<void>
}
