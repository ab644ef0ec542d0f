import { randomBytes } from 'node:crypto'
import pino from 'pino'

export type Logger = pino.Logger

export interface LoggerOptions {
  /**
   * Human-readable lines through `pino-pretty` (in a worker thread) instead of JSON. Default
   * false; see `wantsPrettyLogs` for when the server turns it on.
   */
  readonly pretty?: boolean
  /** Where JSON lines go (default stdout); ignored when `pretty`. Tests record logs here. */
  readonly destination?: pino.DestinationStream
}

// Nothing logs request headers or connection_init payloads; should a field like these ever
// reach a log line, it is censored rather than trusted to hold no token.
const REDACTED_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'connectionParams',
  '*.connectionParams',
]

// A token inside a string: `?token=` / `&access_token=` in a URL, or a bearer credential.
const TOKEN_IN_URL = /([?&](?:access_)?token=)[^&#\s"']+/gi
const BEARER_CREDENTIAL = /(bearer\s+)[A-Za-z0-9._~+/=-]+/gi

/** `text` with any `token=` query value and bearer credential replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  return text.replace(TOKEN_IN_URL, '$1[redacted]').replace(BEARER_CREDENTIAL, '$1[redacted]')
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype

/** A copy of a log line's fields with secrets in strings (two levels deep) redacted. */
function redactFields(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const copy: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string') copy[key] = redactSecrets(value)
    else if (depth < 1 && isPlainObject(value)) copy[key] = redactFields(value, depth + 1)
    else copy[key] = value
  }
  return copy
}

/**
 * Logs at `level` (`LOG_LEVEL`): JSON lines on stdout, or readable lines when `pretty`. Every
 * line carries `service: "switchboard"`; lines about a WebSocket carry its `connectionId`.
 */
export function createLogger(
  level: string,
  { pretty = false, destination }: LoggerOptions = {},
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'switchboard' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // URLs and reasons may be logged; a `?token=` or a bearer credential inside is cut out.
    formatters: { log: redactFields },
    serializers: {
      err: (error: Error) =>
        redactFields(pino.stdSerializers.err(error) as Record<string, unknown>),
    },
    hooks: {
      logMethod(args, method) {
        const redacted = args.map((arg) => (typeof arg === 'string' ? redactSecrets(arg) : arg))
        method.apply(this, redacted as Parameters<typeof method>)
      },
    },
  }
  if (pretty) {
    return pino({
      ...options,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' },
      },
    })
  }
  return destination ? pino(options, destination) : pino(options)
}

/** Readable logs only for a developer: outside production, and when stdout is a terminal. */
export function wantsPrettyLogs(production: boolean, stdout: { isTTY?: boolean } = process.stdout) {
  return !production && stdout.isTTY === true
}

/** A short random id (8 characters of base64url) naming one connection in the logs. */
export function newConnectionId(): string {
  return randomBytes(6).toString('base64url')
}
