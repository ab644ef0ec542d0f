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

// Nothing logs request headers, connection_init payloads or URLs; should a field like these
// ever reach a log line, it is censored rather than trusted to hold no token.
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
