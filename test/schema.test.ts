import { readFile } from 'node:fs/promises'
import { printSchema } from 'graphql'
import { describe, expect, it } from 'vitest'
import { schema } from '../src/schema/index.js'

describe('printed schema', () => {
  it('matches the committed schema/schema.graphql (run `npm run generate` when it fails)', async () => {
    const committed = await readFile(new URL('../schema/schema.graphql', import.meta.url), 'utf8')
    expect(committed).toBe(`${printSchema(schema)}\n`)
  })
})
