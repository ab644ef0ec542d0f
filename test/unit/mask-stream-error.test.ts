import { GraphQLError } from 'graphql'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cursorExpired } from '../../src/errors.js'
import { maskStreamError } from '../../src/transport/graphql-ws.js'

function recordingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
  return { logger, lines }
}

// graphql-ws wraps what a stream throws as `new GraphQLError(message, { originalError })`.
const wrap = (thrown: Error) => new GraphQLError(thrown.message, { originalError: thrown })

describe('errors that end a WebSocket stream', () => {
  it('pass expected errors through with their code', () => {
    const { logger, lines } = recordingLogger()
    expect(maskStreamError(wrap(cursorExpired()), '1', logger)).toMatchObject({
      extensions: { code: 'CURSOR_EXPIRED' },
    })
    expect(lines).toEqual([])
  })

  it('pass validation errors (no cause) through', () => {
    const { logger } = recordingLogger()
    expect(
      maskStreamError(
        new GraphQLError('Variable "$lotId" of required type "ID!" was not provided.'),
        '1',
        logger,
      ),
    ).toEqual({
      message: 'Variable "$lotId" of required type "ID!" was not provided.',
    })
  })

  it('pass a GraphQLError without a code (a variable coercion message) through', () => {
    const { logger, lines } = recordingLogger()
    const coercion = new GraphQLError('ID cannot represent value: {}')
    expect(maskStreamError(wrap(coercion), '1', logger)).toMatchObject({
      message: 'ID cannot represent value: {}',
    })
    expect(lines).toEqual([])
  })

  it('mask a GraphQLError that only wraps an unexpected error', () => {
    const { logger, lines } = recordingLogger()
    const located = new GraphQLError('socket hang up', {
      originalError: new Error('socket hang up'),
    })
    expect(maskStreamError(wrap(located), '2', logger)).toEqual({
      message: 'Unexpected error.',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    })
    expect(lines).toHaveLength(1)
  })

  it('mask anything else for the client and log it with detail', () => {
    const { logger, lines } = recordingLogger()
    const masked = maskStreamError(
      wrap(new Error('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2')),
      '7',
      logger,
    )
    expect(masked).toEqual({
      message: 'Unexpected error.',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    })
    expect(JSON.stringify(masked)).not.toContain('ECONNREFUSED')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({
      subscriptionId: '7',
      err: { message: expect.stringContaining('ECONNREFUSED') },
    })
  })
})
