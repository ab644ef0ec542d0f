import { readFile, writeFile } from 'node:fs/promises'
import { printSchema } from 'graphql'
import { schema } from '../schema/index.js'

/** Writes `schema/schema.graphql`, or with `--check` exits 1 when the committed file is stale. */
const SCHEMA_FILE = new URL('../../schema/schema.graphql', import.meta.url)

async function main(): Promise<void> {
  const printed = `${printSchema(schema)}\n`
  if (process.argv.includes('--check')) {
    const committed = await readFile(SCHEMA_FILE, 'utf8').catch(() => '')
    if (committed !== printed) {
      process.stderr.write(
        'schema/schema.graphql is stale: run `npm run schema:print` and commit it\n',
      )
      process.exit(1)
    }
    process.stdout.write('schema/schema.graphql is up to date\n')
    return
  }
  await writeFile(SCHEMA_FILE, printed)
  process.stdout.write('wrote schema/schema.graphql\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
  process.exit(1)
})
