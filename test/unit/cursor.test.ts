import { GraphQLError } from 'graphql'
import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor } from '../../src/events/cursor.js'

const b64 = (text: string) => Buffer.from(text).toString('base64url')

/** The error `decodeCursor` throws for `cursor`, or a failure when it throws none. */
function refusal(cursor: string): GraphQLError {
  try {
    decodeCursor(cursor)
  } catch (error) {
    expect(error).toBeInstanceOf(GraphQLError)
    return error as GraphQLError
  }
  throw new Error(`decodeCursor accepted ${JSON.stringify(cursor)}`)
}

describe('cursor', () => {
  it.each([
    ['no channel', new Map<string, number>()],
    ['one channel', new Map([['lot:42:parking', 7]])],
    [
      'several channels, in order',
      new Map([
        ['order:9', 1],
        ['seller:5:orders', 0],
        ['restaurant:r-1:chat:u@x.io', 12],
      ]),
    ],
    ['the largest safe seq', new Map([['room:lobby', Number.MAX_SAFE_INTEGER]])],
  ])('round-trips %s', (_name, positions) => {
    const cursor = encodeCursor(positions)
    expect(cursor).toMatch(/^c1\.[A-Za-z0-9_-]*$/)
    const decoded = decodeCursor(cursor)
    expect([...decoded]).toEqual([...positions])
  })

  it('is URL- and header-safe: no characters that need escaping', () => {
    const cursor = encodeCursor(new Map([['lot:ä/+=?:parking', 3]]))
    expect(encodeURIComponent(cursor)).toBe(cursor)
    expect(decodeCursor(cursor).get('lot:ä/+=?:parking')).toBe(3)
  })

  it.each([
    ['empty', ''],
    ['no version', b64('[["lot:1:parking",1]]')],
    ['unknown version', `c2.${b64('[["lot:1:parking",1]]')}`],
    ['no body', 'c1'],
    ['empty body', 'c1.'],
    ['an extra part', `c1.${b64('[]')}.x`],
    ['body not base64 JSON', 'c1.!!!not-base64!!!'],
    ['body not JSON', `c1.${b64('lot:1:parking=1')}`],
    ['JSON that is not a list', `c1.${b64('{"lot:1:parking":1}')}`],
    ['an entry that is not a pair', `c1.${b64('[["lot:1:parking"]]')}`],
    ['a pair with three items', `c1.${b64('[["lot:1:parking",1,2]]')}`],
    ['a channel that is not a string', `c1.${b64('[[1,1]]')}`],
    ['a seq that is a string', `c1.${b64('[["lot:1:parking","1"]]')}`],
    ['a negative seq', `c1.${b64('[["lot:1:parking",-1]]')}`],
    ['a fractional seq', `c1.${b64('[["lot:1:parking",1.5]]')}`],
    ['a seq beyond safe integers', `c1.${b64('[["lot:1:parking",9007199254740993]]')}`],
    ['far too long', `c1.${'A'.repeat(5_000)}`],
  ])('refuses a cursor with %s as BAD_CURSOR', (_name, cursor) => {
    const error = refusal(cursor)
    expect(error.extensions['code']).toBe('BAD_CURSOR')
    expect(error.message).toMatch(/^invalid cursor: /)
    // The message is for a client: it never echoes the cursor back.
    if (cursor.length > 3) expect(error.message).not.toContain(cursor)
  })
})
