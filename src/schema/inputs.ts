/**
 * Argument and input helpers shared by the domain files: id and count checks, text
 * normalisation, the size limit of opaque JSON, and the description of `after:`.
 */
import { badInput } from '../errors.js'
import type { Json } from '../events/event-map.js'
import { checkId } from './guards.js'

/** Description of the `after:` argument of every resumable subscription. */
export const AFTER_DESCRIPTION = 'Cursor of the last event received; replays what followed.'

/** Serialized size limit of opaque JSON carried in events (`meta`, notification `data`). */
export const MAX_JSON_BYTES = 8 * 1_024

/** Checks an `ID` argument (string or number) with `checkId`; `BAD_USER_INPUT` naming `field`. */
export const idArg = (field: string, value: string | number) => checkId(field, String(value))

/** The current time as an ISO 8601 string. */
export const nowIso = () => new Date().toISOString()

/** The text without surrounding whitespace, or `null` when nothing else is left (or none given). */
export const trimmedOrNull = (value: string | null | undefined) =>
  value?.trim() ? value.trim() : null

/** Checks `value` is a whole number from 1 to `max`; `BAD_USER_INPUT` naming `field` otherwise. */
export const checkCount = (field: string, value: number, max: number) => {
  if (!(Number.isInteger(value) && value >= 1 && value <= max)) {
    throw badInput(field, `expected 1 to ${max}, got ${value}`)
  }
  return value
}

/**
 * Checks that opaque JSON stays small once serialized; `BAD_USER_INPUT` naming the field
 * otherwise. Returns the value with `undefined` turned into `null`.
 */
export function checkJsonSize(field: string, value: Json | null | undefined): Json {
  const json = value ?? null
  const bytes = Buffer.byteLength(JSON.stringify(json))
  if (bytes > MAX_JSON_BYTES) {
    throw badInput(field, `expected at most ${MAX_JSON_BYTES} bytes of JSON, got ${bytes}`)
  }
  return json
}
