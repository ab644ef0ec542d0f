import { isDate } from 'node:util/types'

/**
 * Turns one query parameter into what goes on the wire: text, bytes (sent in binary format) or
 * `null`. Mirrors `prepareValue` of node-postgres 8 (`pg/lib/utils.js`, not part of its public
 * API), so the PGlite and PostgreSQL stacks accept the same parameters: `null`/`undefined` →
 * NULL, `Buffer`/typed arrays → bytes, `Date` → local time with its offset, arrays (nested too)
 * → an array literal, other objects → JSON, anything else → `toString()`. Unlike pg, a
 * `toPostgres()` method on an object is not consulted.
 */
export function prepareParameter(value: unknown): string | Buffer | null {
  if (value === null || value === undefined) return null
  if (typeof value !== 'object') return String(value)
  if (value instanceof Buffer) return value
  if (ArrayBuffer.isView(value))
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (isDate(value)) return dateToString(value)
  if (Array.isArray(value)) return arrayLiteral(value)
  return JSON.stringify(value)
}

function arrayLiteral(values: readonly unknown[]): string {
  const elements = values.map((item) => {
    if (item === null || item === undefined) return 'NULL'
    if (Array.isArray(item)) return arrayLiteral(item)
    if (ArrayBuffer.isView(item)) {
      // `\\x…` in the literal is the bytea hex form `\x…` once the array parser unescapes it.
      return `\\\\x${Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('hex')}`
    }
    const text = prepareParameter(item) as string
    return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  })
  return `{${elements.join(',')}}`
}

function dateToString(date: Date): string {
  const pad = (value: number, length = 2) => String(value).padStart(length, '0')
  let year = date.getFullYear()
  const isBC = year < 1
  if (isBC) year = Math.abs(year) + 1 // year 0 is 1 BC
  const offset = -date.getTimezoneOffset() // minutes east of UTC
  const sign = offset < 0 ? '-' : '+'
  const text =
    `${pad(year, 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}` +
    `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  return isBC ? `${text} BC` : text
}
