import { badCursor } from '../errors.js'

/** Position in each channel of a subscription: the seq of the last event delivered. */
export type Positions = ReadonlyMap<string, number>

const VERSION = 'c1'
const MAX_CURSOR_LENGTH = 4_096

/**
 * Encodes positions as an opaque, URL-safe cursor (`c1.` + base64url JSON). Opaque so clients
 * treat it as a token; versioned so the format can change without breaking stored cursors.
 */
export function encodeCursor(positions: Positions): string {
  const json = JSON.stringify([...positions])
  return `${VERSION}.${Buffer.from(json).toString('base64url')}`
}

/** Decodes a cursor made by `encodeCursor`; throws a `BAD_CURSOR` error for anything else. */
export function decodeCursor(cursor: string): Map<string, number> {
  if (cursor.length > MAX_CURSOR_LENGTH) throw badCursor('too long')
  const [version, body, ...rest] = cursor.split('.')
  if (version !== VERSION || body === undefined || rest.length > 0) {
    throw badCursor('unknown format')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    throw badCursor('not decodable')
  }
  if (!Array.isArray(parsed)) throw badCursor('not decodable')
  const positions = new Map<string, number>()
  for (const entry of parsed) {
    if (
      !Array.isArray(entry) ||
      entry.length !== 2 ||
      typeof entry[0] !== 'string' ||
      !Number.isSafeInteger(entry[1]) ||
      entry[1] < 0
    ) {
      throw badCursor('not decodable')
    }
    positions.set(entry[0], entry[1])
  }
  return positions
}
