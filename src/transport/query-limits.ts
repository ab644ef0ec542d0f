import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor'
import type { GraphQLError, ValidationContext } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import type { QueryLimits } from '../config.js'
import { queryLimitExceeded } from '../errors.js'

/** What graphql-armor calls with a refusal (the context is null while parsing). */
type RejectCallback = (context: ValidationContext | null, error: GraphQLError) => void

// graphql-armor words every refusal as a syntax error; none of these is one.
const describe = (message: string) => message.replace(/^Syntax Error: /, '')

/** Reports a refusal found while validating as a validation error with a code. */
function reportAs(limit: keyof QueryLimits): RejectCallback {
  return (context, error) =>
    context?.reportError(queryLimitExceeded(limit, describe(error.message)))
}

/** Validation-time limits: reported with the document's other validation errors. */
function validated(limit: 'maxDepth' | 'maxAliases' | 'maxDirectives', n: number) {
  return { enabled: n > 0, n, propagateOnRejection: false, onReject: [reportAs(limit)] }
}

/**
 * Envelop plugins refusing documents over `limits` (0 turns one off), so HTTP, SSE and every
 * transport that runs through `yoga.getEnveloped` (graphql-ws) refuse alike. Depth, aliases,
 * directives and cost come back as validation errors; the token limit stops the parser as soon
 * as it is crossed, so a huge document is never fully parsed. Each refusal is `BAD_USER_INPUT`
 * with `extensions.limit` naming the limit. Introspection's `__schema` is exempt from depth and
 * cost (GraphiQL's introspection query nests types deeply), not from tokens.
 */
export function queryLimitPlugins(limits: QueryLimits): Plugin[] {
  return [
    EnvelopArmorPlugin({
      // Suggestions stay: the schema is public through introspection anyway.
      blockFieldSuggestion: { enabled: false },
      maxDepth: { ...validated('maxDepth', limits.maxDepth), ignoreIntrospection: true },
      maxAliases: validated('maxAliases', limits.maxAliases),
      maxDirectives: validated('maxDirectives', limits.maxDirectives),
      costLimit: {
        enabled: limits.maxCost > 0,
        maxCost: limits.maxCost,
        ignoreIntrospection: true,
        propagateOnRejection: false,
        onReject: [reportAs('maxCost')],
      },
      maxTokens: {
        enabled: limits.maxTokens > 0,
        n: limits.maxTokens,
        onReject: [
          (_context, error) => {
            throw queryLimitExceeded('maxTokens', describe(error.message))
          },
        ],
      },
    }),
  ]
}
