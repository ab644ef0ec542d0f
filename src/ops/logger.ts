import pino from 'pino'

export type Logger = pino.Logger

/** JSON logs on stdout at `level`. Tokens never reach here: nothing logs request headers. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'switchboard' },
    redact: {
      paths: ['token', '*.token', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  })
}
