import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database, Queryable } from '../../src/db/database.js'
import { openPgliteDatabase } from '../../src/db/pglite-database.js'

let db: Database

beforeAll(async () => {
  db = await openPgliteDatabase('memory://')
})

afterAll(async () => {
  await db?.close()
})

let tableCounter = 0
/** Creates a fresh table (`id int primary key, tag text` unless told) and returns its name. */
async function freshTable(columns = 'id int primary key, tag text'): Promise<string> {
  tableCounter += 1
  const name = `t${tableCounter}`
  await db.query(`create table ${name} (${columns})`)
  return name
}

/** How many statements `target` holds prepared with exactly `sql` as their text. */
async function preparedCount(sql: string, target: Database = db): Promise<number> {
  const [row] = await target.query<{ count: number }>(
    'select count(*)::int as count from pg_prepared_statements where statement = $1',
    [sql],
  )
  return row?.count ?? -1
}

function deferred() {
  let resolve = () => {}
  const promise = new Promise<void>((settle) => {
    resolve = settle
  })
  return { promise, resolve }
}

/** One turn of the event loop: whatever was ready to run has run. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

describe('parameters and rows', () => {
  it('round-trip text, numbers, bigints, booleans, nulls, dates and bytes', async () => {
    const table = await freshTable(
      'name text, n int, small bigint, huge bigint, flag boolean, missing text, at timestamptz, bytes bytea',
    )
    const at = new Date('2024-02-29T23:34:56.789Z')
    const values = ['it\'s "quoted" \\ ü', 42, 12n, 2n ** 62n, true, undefined, at]
    await db.query(`insert into ${table} values ($1, $2, $3, $4, $5, $6, $7, $8)`, [
      ...values,
      Buffer.from([0, 1, 254, 255]),
    ])
    const [row] = await db.query(`select * from ${table}`)
    expect(row).toEqual({
      name: 'it\'s "quoted" \\ ü',
      n: 42,
      small: 12, // int8 within the safe range decodes to a number
      huge: 2n ** 62n,
      flag: true,
      missing: null,
      at,
      bytes: new Uint8Array([0, 1, 254, 255]),
    })
    expect(row?.['at']).toBeInstanceOf(Date)
  })

  it('send arrays as array literals, quotes, backslashes and null elements included', async () => {
    const items = [
      'plain',
      'with "quotes"',
      'back\\slash',
      'a,b',
      '{braces}',
      '',
      null,
      'NULL',
      ' x ',
    ]
    const [row] = await db.query('select $1::text[] as items, $2::int[][] as grid', [
      items,
      [
        [1, 2],
        [3, 4],
      ],
    ])
    expect(row).toEqual({
      items,
      grid: [
        [1, 2],
        [3, 4],
      ],
    })
    const unnested = await db.query<{ item: string | null }>(
      'select item from unnest($1::text[]) with ordinality as t(item, position) order by position',
      [items],
    )
    expect(unnested.map(({ item }) => item)).toEqual(items)
  })

  it('decode jsonb sent as a JSON string or as an object', async () => {
    const [row] = await db.query('select $1::jsonb as text, $2::jsonb as object', [
      JSON.stringify({ x: [1, 'two', null] }),
      { nested: { ok: true } },
    ])
    expect(row).toEqual({ text: { x: [1, 'two', null] }, object: { nested: { ok: true } } })
  })

  it('leave parameter types for PostgreSQL to infer', async () => {
    const [row] = await db.query('select $1 + 1 as sum, $2 as untyped', [41, 7])
    expect(row).toEqual({ sum: 42, untyped: '7' })
  })
})

describe('statement cache', () => {
  it('prepares a statement once and reuses it on every call', async () => {
    const sql = 'select $1::int * 2 as doubled'
    for (let i = 0; i < 300; i++) {
      expect(await db.query(sql, [i])).toEqual([{ doubled: i * 2 }])
    }
    expect(await preparedCount(sql)).toBe(1)
  })

  it('keeps at most maxStatements prepared, evicting the least recently used', async () => {
    const small = await openPgliteDatabase('memory://', { maxStatements: 8 })
    try {
      const kept = 'select 1000 as kept'
      await small.query(kept)
      for (let i = 0; i < 30; i++) {
        expect(await small.query(`select ${i} as n`)).toEqual([{ n: i }])
        await small.query(kept) // used most recently each time, so never evicted
      }
      expect(await preparedCount(kept, small)).toBe(1)
      expect(await preparedCount('select 0 as n', small)).toBe(0)
      expect(await small.query('select 0 as n')).toEqual([{ n: 0 }])
      const [all] = await small.query<{ count: number }>(
        'select count(*)::int as count from pg_prepared_statements',
      )
      expect(all?.count).toBeLessThanOrEqual(8)
    } finally {
      await small.close()
    }
  })

  it('stays correct past its default size of 256 statements', async () => {
    for (let i = 0; i < 300; i++) expect(await db.query(`select ${i} as n`)).toEqual([{ n: i }])
    const [all] = await db.query<{ count: number }>(
      'select count(*)::int as count from pg_prepared_statements',
    )
    expect(all?.count).toBeLessThanOrEqual(256)
    expect(await db.query('select 0 as n')).toEqual([{ n: 0 }])
  })

  it('keeps nothing of a statement that failed to parse', async () => {
    const bad = 'selec 1'
    await expect(db.query(bad)).rejects.toMatchObject({ code: '42601' })
    await expect(db.query(bad)).rejects.toMatchObject({ code: '42601' })
    expect(await preparedCount(bad)).toBe(0)
    expect(await db.query('select 1 as one')).toEqual([{ one: 1 }])
  })

  it('keeps a statement that parsed but failed to bind, and reuses it', async () => {
    const sql = 'select $1::int as n'
    await expect(db.query(sql, ['not a number'])).rejects.toMatchObject({ code: '22P02' })
    expect(await db.query(sql, [7])).toEqual([{ n: 7 }])
    expect(await preparedCount(sql)).toBe(1)
  })

  it('parses again a statement whose columns a schema change altered', async () => {
    const table = await freshTable('id int')
    await db.query(`insert into ${table} values (1)`)
    const sql = `select * from ${table}`
    expect(await db.query(sql)).toEqual([{ id: 1 }])
    await db.query(`alter table ${table} add column note text default 'x'`)
    expect(await db.query(sql)).toEqual([{ id: 1, note: 'x' }])

    const undo = new Error('undo')
    const undone = db.transaction(async (tx) => {
      await tx.query(`alter table ${table} drop column note`)
      expect(await tx.query(sql)).toEqual([{ id: 1 }])
      throw undo
    })
    await expect(undone).rejects.toBe(undo)
    // The rollback brought the column back: the statement cached without it must go.
    const rows = await db.transaction((tx) => tx.query(sql))
    expect(rows).toEqual([{ id: 1, note: 'x' }])
  })

  it('parses again a statement that DDL run by a function made stale', async () => {
    const table = await freshTable('id int')
    await db.query(`insert into ${table} values (1)`)
    await db.query(
      `create function widen_${table}() returns void language plpgsql as $$
       begin execute 'alter table ${table} add column extra int default 5'; end $$`,
    )
    const sql = `select * from ${table}`
    expect(await db.query(sql)).toEqual([{ id: 1 }])
    await db.query(`select widen_${table}()`) // a SELECT, as far as the command tag tells
    expect(await db.query(sql)).toEqual([{ id: 1, extra: 5 }])
  })
})

describe('errors', () => {
  it('reject a unique violation with its SQLSTATE, outside and inside a transaction', async () => {
    const table = await freshTable()
    await db.query(`insert into ${table} values (1, 'a')`)
    const duplicate = { code: '23505', message: expect.stringMatching(/duplicate key/) }
    await expect(db.query(`insert into ${table} values (1, 'b')`)).rejects.toMatchObject(duplicate)
    await expect(
      db.transaction((tx) => tx.query(`insert into ${table} values ($1, $2)`, [1, 'c'])),
    ).rejects.toMatchObject(duplicate)
    expect(await db.query(`select tag from ${table}`)).toEqual([{ tag: 'a' }])
  })

  it('reject a parameter that cannot be serialised, and send the next statement intact', async () => {
    await expect(db.query('select $1::jsonb as j', [{ big: 1n }])).rejects.toThrow(TypeError)
    expect(await db.query('select $1::text as fresh', ['next'])).toEqual([{ fresh: 'next' }])
  })

  it('leave the session usable after a syntax error', async () => {
    await expect(db.query('select from where')).rejects.toMatchObject({ code: '42601' })
    expect(await db.query('select $1::text as echo', ['ok'])).toEqual([{ echo: 'ok' }])
  })
})

describe('transactions', () => {
  it('roll back on a failing statement, and the next one commits', async () => {
    const table = await freshTable()
    const failing = db.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (1, 'first')`)
      await tx.query(`insert into ${table} values (1, 'again')`)
    })
    await expect(failing).rejects.toMatchObject({ code: '23505' })
    expect(await db.query(`select * from ${table}`)).toEqual([])

    const result = await db.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (2, 'second')`)
      return 'done'
    })
    expect(result).toBe('done')
    expect(await db.query(`select * from ${table}`)).toEqual([{ id: 2, tag: 'second' }])
  })

  it('roll back when the work throws, and rethrow the same error', async () => {
    const table = await freshTable()
    const boom = new Error('boom')
    const failing = db.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (1, 'x')`)
      throw boom
    })
    await expect(failing).rejects.toBe(boom)
    expect(await db.query(`select * from ${table}`)).toEqual([])
  })

  it('refuse to commit what a caught statement error aborted', async () => {
    const table = await freshTable()
    const failing = db.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (1, 'x')`)
      await tx.query('select 1 / 0').catch(() => {})
    })
    await expect(failing).rejects.toMatchObject({ code: '25P02' })
    expect(await db.query(`select * from ${table}`)).toEqual([])
  })

  it('reject statements sent on a transaction that has ended', async () => {
    let ended: Queryable | undefined
    await db.transaction(async (tx) => {
      ended = tx
    })
    await expect(ended?.query('select 1')).rejects.toThrow(/closed/)
  })
})

describe('one statement or transaction at a time', () => {
  it('runs concurrent transactions one after another', async () => {
    const table = await freshTable()
    const counts = await Promise.all(
      [1, 2, 3, 4, 5].map((id) =>
        db.transaction(async (tx) => {
          await tx.query(`insert into ${table} values ($1, 'x')`, [id])
          await nextTurn() // room for another transaction to slip in, were it allowed
          const [row] = await tx.query<{ count: number }>(
            `select count(*)::int as count from ${table}`,
          )
          return row?.count
        }),
      ),
    )
    expect(counts).toEqual([1, 2, 3, 4, 5])
  })

  it('makes a query outside wait for the open transaction', async () => {
    const table = await freshTable()
    const inside = deferred()
    const release = deferred()
    const undo = new Error('undo')
    const transaction = db.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (1, 'inside')`)
      inside.resolve()
      await release.promise
      throw undo
    })
    await inside.promise
    let outsideDone = false
    const outside = db.query(`insert into ${table} values (2, 'outside')`).then(() => {
      outsideDone = true
    })
    await nextTurn()
    expect(outsideDone).toBe(false)
    release.resolve()
    await expect(transaction).rejects.toBe(undo)
    await outside
    // Had it run inside the transaction, the rollback would have taken it too.
    expect(await db.query(`select tag from ${table}`)).toEqual([{ tag: 'outside' }])
  })

  it('closes once queued statements have run, and refuses statements after', async () => {
    const closing = await openPgliteDatabase('memory://')
    const queued = closing.query('select 1 as one')
    await closing.close()
    expect(await queued).toEqual([{ one: 1 }])
    await expect(closing.query('select 1')).rejects.toThrow(/closed/)
  })

  it('answers ping', async () => {
    await expect(db.ping()).resolves.toBeUndefined()
  })
})

describe('a data directory on disk', () => {
  it('keeps what committed across a close and reopen', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'switchboard-pglite-'))
    try {
      const first = await openPgliteDatabase(dataDir)
      await first.query('create table kept (id int)')
      await first.query('insert into kept values ($1)', [1])
      await first.transaction((tx) => tx.query('insert into kept values ($1)', [2]))
      await first.close()
      const second = await openPgliteDatabase(dataDir)
      expect(await second.query('select id from kept order by id')).toEqual([{ id: 1 }, { id: 2 }])
      await second.close()
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
