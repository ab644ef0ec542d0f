import { GraphQLError } from 'graphql'

/**
 * Expected errors, each a `GraphQLError` with `extensions.code`. Anything thrown that is not
 * made here is unexpected: Yoga masks it for clients and it is logged with detail.
 */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  BAD_CURSOR: 'BAD_CURSOR',
  CURSOR_EXPIRED: 'CURSOR_EXPIRED',
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  CLOSED_BY_OPERATOR: 'CLOSED_BY_OPERATOR',
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  RATE_LIMITED: 'RATE_LIMITED',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

function expected(message: string, code: ErrorCode, status: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status } } })
}

/** No token, a bad signature, an expired token or unusable claims. */
export function unauthenticated(reason = 'a valid token is required'): GraphQLError {
  return expected(reason, ErrorCode.UNAUTHENTICATED, 401)
}

/**
 * The viewer may not do this. The message never says whether the resource exists, so a
 * refusal leaks nothing about channels the viewer cannot see.
 */
export function forbidden(action = 'access this resource'): GraphQLError {
  return expected(`not allowed to ${action}`, ErrorCode.FORBIDDEN, 403)
}

/** A resource the viewer may see does not exist (asked only after authorization passed). */
export function notFound(what: string): GraphQLError {
  return expected(`${what} not found`, ErrorCode.NOT_FOUND, 404)
}

/** An argument is invalid; the message names the field and what was received. */
export function badInput(field: string, problem: string): GraphQLError {
  return new GraphQLError(`${field}: ${problem}`, {
    extensions: { code: ErrorCode.BAD_USER_INPUT, field, http: { status: 400 } },
  })
}

/** A resume cursor that cannot be decoded or does not belong to this subscription. */
export function badCursor(problem: string): GraphQLError {
  return expected(`invalid cursor: ${problem}`, ErrorCode.BAD_CURSOR, 400)
}

/**
 * A resume cursor points before what the log still holds: the events right after it were
 * pruned by retention. Replaying from it would skip them silently, so the client must refetch
 * the current state and subscribe again without `after`.
 */
export function cursorExpired(): GraphQLError {
  return expected(
    'cursor expired: events after it were pruned from the log; refetch the current state and subscribe again without `after`',
    ErrorCode.CURSOR_EXPIRED,
    410,
  )
}

/**
 * The database did not answer. The publish most likely did not happen, but a connection lost
 * during COMMIT leaves that unknown: retry with the same `idempotencyKey` to be safe.
 */
export function databaseUnavailable(): GraphQLError {
  return expected(
    'database unavailable; retry later (with the same idempotencyKey, so a publish is not doubled)',
    ErrorCode.DATABASE_UNAVAILABLE,
    503,
  )
}

/**
 * An operator ended the subscription (admin API `closeChannelSubscriptions`). It is not
 * resumed by itself: the client decides whether to subscribe again.
 */
export function closedByOperator(reason: string): GraphQLError {
  return expected(
    `subscription closed by an operator: ${reason}`,
    ErrorCode.CLOSED_BY_OPERATOR,
    410,
  )
}

/**
 * The client fell too far behind: more events waited for it than the server keeps per
 * subscriber. It resumes with `after:` its last cursor and loses nothing.
 */
export function slowConsumer(limit: string): GraphQLError {
  return expected(
    `slow consumer: more than ${limit} waited to be read; resume with the last cursor`,
    ErrorCode.SLOW_CONSUMER,
    503,
  )
}

/** A configured limit refused the operation, e.g. subscriptions per connection. */
export function limitExceeded(what: string): GraphQLError {
  return expected(`limit exceeded: ${what}`, ErrorCode.LIMIT_EXCEEDED, 429)
}

/**
 * A document over one of the query limits (depth, aliases, directives, tokens, cost). The
 * message says which limit and by how much; `extensions.limit` names it (e.g. `maxDepth`).
 */
export function queryLimitExceeded(limit: string, message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: ErrorCode.BAD_USER_INPUT, limit, http: { status: 400 } },
  })
}

/**
 * The token's subject publishes faster than the publish rate allows. Nothing was published;
 * retrying after `retryAfterMs` succeeds (also sent as `Retry-After`, in seconds, over HTTP).
 */
export function rateLimited(retryAfterMs: number): GraphQLError {
  const wait = Math.max(1, Math.ceil(retryAfterMs))
  return new GraphQLError(`publish rate exceeded for this token; retry in ${wait} ms`, {
    extensions: {
      code: ErrorCode.RATE_LIMITED,
      retryAfterMs: wait,
      http: { status: 429, headers: { 'Retry-After': String(Math.ceil(wait / 1_000)) } },
    },
  })
}
