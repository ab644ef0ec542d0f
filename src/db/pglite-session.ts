import { messages, type PGlite, protocol } from '@electric-sql/pglite'
import { prepareParameter } from './prepare-parameter.js'

// Why the adapter speaks the wire protocol itself: PGlite's `query()` sends Parse, Describe,
// Bind, Describe, Execute and Sync as six separate calls into WebAssembly and parses and plans
// the SQL again every time, and its `transaction()` runs BEGIN and COMMIT the same way. Here a
// statement is one call, and one seen before is only bound and executed. CPU per call, warm,
// PGlite's API → this session (2-core VM, memory://): `select 1` 155 → 67 µs, the event-log
// append 570 → 250 µs, an empty transaction 100 → 57 µs.

const { serialize } = protocol
const DESCRIBE_EXECUTE_SYNC = concat([
  serialize.describe({ type: 'P' }),
  serialize.execute(),
  serialize.sync(),
])
// Command tags of statements that cannot change the schema. Any other (CREATE, ALTER, DROP,
// SET search_path, DISCARD, ...) closes every cached statement, whose plans it may have made
// stale; PGlite has no other session that could change the schema behind this one's back.
const SCHEMA_PRESERVING_COMMANDS = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'COPY',
  'FETCH',
  'MOVE',
  'NOTIFY',
  'SHOW',
  'EXPLAIN',
])
// SQLSTATEs of a cached statement failing at Bind, before anything ran, as stale all the same
// (DDL run inside a function, say): gone from the server (26000), or its result columns changed
// (0A000, "cached plan must not change result type"). Parsing the SQL again cures both.
const STALE_STATEMENT_CODES = new Set(['26000', '0A000'])

export interface PgliteSessionOptions {
  /**
   * How many statements stay prepared, by SQL text; the least recently used one is closed when
   * another is needed. Default: 256.
   */
  readonly maxStatements?: number
}

/** The one wire-protocol session of a PGlite instance. Calls run one at a time, in call order. */
export interface PgliteSession {
  /**
   * Runs one statement with `params` (serialised as node-postgres does) and returns its rows,
   * decoded by PGlite's type parsers. Rejects with the server's `DatabaseError` (`code`,
   * `message`, ...). `inTransaction` holds back syncing the data directory to disk.
   */
  query<Row>(sql: string, params: readonly unknown[], inTransaction: boolean): Promise<Row[]>
  /**
   * Runs transaction control (`begin`, `commit`, `rollback`) as a simple query and returns its
   * command tag; `commit` of an aborted transaction answers `ROLLBACK`.
   */
  command(sql: string, options: { readonly syncToFs: boolean }): Promise<string>
}

interface Column {
  readonly name: string
  readonly oid: number
  readonly parse: (text: string, oid: number) => unknown
}

/** Wraps `pglite`, which nothing else may send statements to. */
export function createPgliteSession(
  pglite: PGlite,
  { maxStatements = 256 }: PgliteSessionOptions = {},
): PgliteSession {
  // SQL text → name of its prepared statement, least recently used first.
  const statements = new Map<string, string>()
  // Statements no longer in `statements` that the server may still hold.
  let toClose: string[] = []
  let statementCount = 0
  // Whether the open transaction changed the schema; a rollback undoes that too.
  let schemaChanged = false
  const oneAtATime = createLock()

  async function exchange(parts: Uint8Array[], syncToFs: boolean) {
    if (pglite.closed) throw new Error('PGlite is closed')
    const result = await pglite.execProtocol(concat(parts), { syncToFs, throwOnError: false })
    return result.messages
  }

  /** One round trip; `stale` when a cached statement must be parsed again (nothing ran). */
  async function execute(sql: string, params: readonly unknown[], inTransaction: boolean) {
    const cachedName = statements.get(sql)
    // Evicting before the Parse keeps the server at `maxStatements` at most.
    if (cachedName === undefined && statements.size >= maxStatements) {
      forget(statements.keys().next().value as string)
    }
    const name = cachedName ?? `switchboard_${++statementCount}`
    const parts = toClose.map((closing) => serialize.close({ type: 'S', name: closing }))
    if (cachedName === undefined) parts.push(serialize.parse({ name, text: sql }))
    // Prepared before `bind` starts writing: its writer is shared, and a throw midway (a BigInt
    // inside an object, say) would leave half a message in it for the next one.
    const values = params.map(prepareParameter)
    parts.push(serialize.bind({ statement: name, values }))
    parts.push(DESCRIBE_EXECUTE_SYNC)

    let closed = 0
    let parsed = false
    let bound = false
    let command: string | undefined
    let error: messages.DatabaseError | undefined
    let columns: Column[] = []
    const rows: Record<string, unknown>[] = []
    for (const message of await exchange(parts, !inTransaction)) {
      if (message instanceof messages.DataRowMessage) rows.push(decodeRow(columns, message.fields))
      else if (message instanceof messages.RowDescriptionMessage) columns = toColumns(message)
      else if (message instanceof messages.CommandCompleteMessage) command = message.text
      else if (message instanceof messages.DatabaseError) error ??= message
      else if (message.name === 'closeComplete') closed += 1
      else if (message.name === 'parseComplete') parsed = true
      else if (message.name === 'bindComplete') bound = true
    }

    // The server skips every message after a failed one up to Sync, so what completed tells
    // what it holds now, whichever message failed.
    toClose = toClose.slice(closed)
    const stale = cachedName !== undefined && !bound && STALE_STATEMENT_CODES.has(error?.code ?? '')
    if (stale) forget(sql)
    else if (cachedName !== undefined || parsed) remember(sql, name)
    if (command !== undefined && !SCHEMA_PRESERVING_COMMANDS.has(command.split(' ')[0] ?? '')) {
      if (inTransaction) schemaChanged = true
      forgetAll()
    }
    return { rows, error, stale }
  }

  function toColumns({ fields }: messages.RowDescriptionMessage): Column[] {
    return fields.map(({ name, dataTypeID: oid }) => ({
      name,
      oid,
      parse: pglite.parsers[oid] ?? ((text: string) => text),
    }))
  }

  /** Marks `sql` the most recently used statement. */
  function remember(sql: string, name: string) {
    statements.delete(sql)
    statements.set(sql, name)
  }

  function forget(sql: string) {
    const name = statements.get(sql)
    if (name === undefined) return
    statements.delete(sql)
    toClose.push(name)
  }

  function forgetAll() {
    toClose.push(...statements.values())
    statements.clear()
  }

  return {
    query<Row>(sql: string, params: readonly unknown[], inTransaction: boolean) {
      return oneAtATime(async () => {
        let outcome = await execute(sql, params, inTransaction)
        // Outside a transaction the failed Bind left nothing behind, so trying again is safe.
        if (outcome.stale && !inTransaction) outcome = await execute(sql, params, false)
        if (outcome.error) throw Object.assign(outcome.error, { query: sql, params })
        return outcome.rows as Row[]
      })
    },
    command(sql, { syncToFs }) {
      return oneAtATime(async () => {
        let tag = ''
        for (const message of await exchange([serialize.query(sql)], syncToFs)) {
          if (message instanceof messages.DatabaseError) {
            throw Object.assign(message, { query: sql })
          }
          if (message instanceof messages.CommandCompleteMessage) tag = message.text
        }
        if (tag === 'COMMIT' || tag === 'ROLLBACK') {
          if (schemaChanged && tag === 'ROLLBACK') forgetAll()
          schemaChanged = false
        }
        return tag
      })
    },
  }
}

/** Returns a function that runs tasks one at a time, each once the previous one has settled. */
export function createLock(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return (task) => {
    const run = tail.then(task)
    tail = run.catch(() => {})
    return run
  }
}

function decodeRow(columns: readonly Column[], fields: readonly (string | null)[]) {
  const row: Record<string, unknown> = {}
  for (let i = 0; i < columns.length; i++) {
    const { name, oid, parse } = columns[i] as Column
    const text = fields[i]
    row[name] = text === null || text === undefined ? null : parse(text, oid)
  }
  return row
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const joined = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    joined.set(part, offset)
    offset += part.length
  }
  return joined
}
