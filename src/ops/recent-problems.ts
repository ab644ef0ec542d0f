import { type DocumentNode, GraphQLError } from 'graphql'
import { isAsyncIterable, type Plugin } from 'graphql-yoga'
import type { Viewer } from '../auth/viewer.js'
import { ErrorCode } from '../errors.js'
import { labelOperation } from './operation-label.js'

/** A refusal (no or bad token, not allowed) or an error of any other kind. */
export type ProblemKind = 'ERROR' | 'REFUSAL'

/** One error or refusal an operator may want to see. */
export interface Problem {
  /** When it happened (ISO 8601). */
  readonly at: string
  readonly kind: ProblemKind
  /** `extensions.code` as the client saw it, e.g. `FORBIDDEN`, `CURSOR_EXPIRED`. */
  readonly code: string
  /** What the client was told, shortened; unexpected errors never show their detail here. */
  readonly message: string
  /** The token's `sub`, when there was a valid token. */
  readonly user: string | null
  /** The operation's name, else its root field. */
  readonly operation: string | null
  /** The peer's address, when the transport knows it (WebSocket refusals). */
  readonly remoteAddress: string | null
}

/** What `record` needs; the time and the kind are added there. */
export type ProblemReport = Omit<Problem, 'at' | 'kind' | 'user' | 'operation' | 'remoteAddress'> &
  Partial<Pick<Problem, 'user' | 'operation' | 'remoteAddress'>>

/** The last few errors and refusals of this instance, in a ring buffer of fixed size. */
export interface RecentProblems {
  record(report: ProblemReport): void
  /** Newest first, at most `limit` (default: all kept). */
  list(limit?: number): Problem[]
  /** How many of each kind were recorded since start, including those the buffer dropped. */
  totals(): { errors: number; refusals: number }
}

export interface RecentProblemsOptions {
  /** How many problems are kept; older ones are dropped (default 50). */
  readonly capacity?: number
}

const REFUSAL_CODES: ReadonlySet<string> = new Set([ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN])
const MAX_MESSAGE = 200 // characters kept of a message

/** Creates an empty ring buffer of problems. */
export function createRecentProblems({
  capacity = 50,
}: RecentProblemsOptions = {}): RecentProblems {
  const ring: Problem[] = []
  let next = 0
  const totals = { errors: 0, refusals: 0 }
  return {
    record({ code, message, user = null, operation = null, remoteAddress = null }) {
      const kind: ProblemKind = REFUSAL_CODES.has(code) ? 'REFUSAL' : 'ERROR'
      if (kind === 'REFUSAL') totals.refusals += 1
      else totals.errors += 1
      const problem: Problem = {
        at: new Date().toISOString(),
        kind,
        code,
        message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
        user,
        operation,
        remoteAddress,
      }
      ring[next] = problem
      next = (next + 1) % capacity
    },
    list(limit = capacity) {
      const newestFirst = [...ring.slice(next), ...ring.slice(0, next)].reverse()
      return newestFirst.slice(0, limit)
    },
    totals: () => ({ ...totals }),
  }
}

/**
 * The code and message an operator sees for `error`. Unexpected errors (no code, or an
 * original error that is not a `GraphQLError`) show no detail: that goes to the server log.
 */
function describeError(error: unknown): { code: string; message: string } {
  if (!(error instanceof GraphQLError)) {
    return { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error (see the server log)' }
  }
  const code = error.extensions['code']
  if (code === 'INTERNAL_SERVER_ERROR' || (code === undefined && error.originalError)) {
    const cause = error.originalError
    if (!(cause instanceof GraphQLError && typeof cause.extensions['code'] === 'string')) {
      return { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error (see the server log)' }
    }
    return describeError(cause)
  }
  return { code: typeof code === 'string' ? code : 'BAD_USER_INPUT', message: error.message }
}

/** What identifies an operation in a problem record. */
export interface OperationArgs {
  readonly document: DocumentNode
  readonly operationName?: string | null | undefined
  readonly contextValue?: unknown
}

/** Records in `problems` each of `errors` an operation met (before any masking). */
export function recordOperationErrors(
  problems: RecentProblems,
  errors: readonly unknown[] | undefined,
  args: OperationArgs,
): void {
  if (!errors?.length) return
  const { operationName, rootField } = labelOperation(args.document, args.operationName)
  const viewer = (args.contextValue as { viewer?: Viewer | null } | undefined)?.viewer
  for (const error of errors) {
    problems.record({
      ...describeError(error),
      user: viewer?.sub ?? null,
      operation: operationName ?? rootField,
    })
  }
}

/**
 * Records in `problems` the errors of every operation that executes through Yoga (HTTP, SSE
 * and graphql-ws queries and mutations): errors in results, subscriptions refused before they
 * stream, and errors that end a stream. Requests that fail validation never execute and are
 * not recorded. (graphql-ws subscriptions record theirs in the transport.)
 */
export function useRecentProblems(problems: RecentProblems): Plugin {
  const recordAll = (errors: readonly unknown[] | undefined, args: OperationArgs) =>
    recordOperationErrors(problems, errors, args)
  return {
    onExecute: ({ args }) => ({
      onExecuteDone({ result }) {
        if (!isAsyncIterable(result)) recordAll(result.errors, args)
      },
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult({ result }) {
        if (!isAsyncIterable(result)) return recordAll(result.errors, args)
        return { onNext: ({ result: next }) => recordAll(next.errors, args) }
      },
      onSubscribeError: ({ error }) => recordAll([error], args),
    }),
  }
}
