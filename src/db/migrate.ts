import { readdir, readFile } from 'node:fs/promises'
import type { Database } from './database.js'

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url)
// Any constant works; it only has to be the same for every instance of Switchboard.
const MIGRATION_LOCK_KEY = 7_340_101

/**
 * Applies the `migrations/*.sql` files not yet recorded in `schema_migrations`, in name order,
 * each in its own transaction. Instances starting together serialise on an advisory lock, so
 * one migrates and the others find the work done. Returns the names applied.
 */
export async function migrate(db: Database): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql')).sort()
  const applied: string[] = []
  for (const name of files) {
    const sql = await readFile(new URL(name, MIGRATIONS_DIR), 'utf8')
    const didApply = await db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
      // Under the lock: concurrent `create table if not exists` collide in PostgreSQL's catalog.
      await tx.query(
        'create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())',
      )
      const done = await tx.query('select 1 from schema_migrations where name = $1', [name])
      if (done.length > 0) return false
      for (const statement of splitStatements(sql)) await tx.query(statement)
      await tx.query('insert into schema_migrations (name) values ($1)', [name])
      return true
    })
    if (didApply) applied.push(name)
  }
  return applied
}

/** Splits a migration on `;` at line ends; migrations keep to one statement per `;`-ended line. */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((statement) => statement.replace(/^\s*--.*$/gm, '').trim())
    .filter((statement) => statement.length > 0)
}
