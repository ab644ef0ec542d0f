import { GraphQLError, getOperationAST } from 'graphql'
import { isAsyncIterable, type Plugin } from 'graphql-yoga'
import { onEnd } from '../transport/endable-stream.js'
import type { Metrics } from './metrics.js'
import { labelOperation } from './operation-label.js'

/** The code a client sees for `error`: its `extensions.code`, else what Yoga answers. */
function codeOf(error: GraphQLError): string {
  const code = error.extensions['code']
  if (typeof code === 'string') return code
  // Without an original error it is a request error (variables); with one, unexpected.
  return error.originalError && !(error.originalError instanceof GraphQLError)
    ? 'INTERNAL_SERVER_ERROR'
    : 'BAD_USER_INPUT'
}

/**
 * Operation-level metrics for every transport that executes through Yoga (HTTP, SSE and
 * graphql-ws): subscriptions streaming by root field, and errors of publish mutations by code.
 */
export function useOperationMetrics(metrics: Metrics): Plugin {
  return {
    onSubscribe({ args }) {
      const operation = getOperationAST(args.document, args.operationName)
      if (!operation) return
      const field = labelOperation(args.document, null, operation).rootField
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) return
          metrics.subscriptions.inc({ field })
          setResult(onEnd(result, () => metrics.subscriptions.dec({ field })))
        },
      }
    },
    onExecute({ args }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return
          for (const error of result.errors ?? [])
            metrics.publishErrors.inc({ code: codeOf(error) })
        },
      }
    },
  }
}
