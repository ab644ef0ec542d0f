/** Conversions between SQL column values and the strings the projections hand out. */

/**
 * A timestamp column as the driver returns it (a `Date` or a string) as an ISO 8601 string.
 * Throws a `RangeError` when the value is not a valid date.
 */
export const toIso = (value: Date | string) => new Date(value).toISOString()
