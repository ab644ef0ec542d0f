import {
  type DocumentNode,
  type ExecutionResult,
  execute,
  type GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  print,
  visit,
} from 'graphql'
import type { Viewer } from '../auth/viewer.js'
import type { FeedGroup } from '../events/channel-feed.js'
import type { DeliveredEvent, StoredEvent } from '../events/stored-event.js'

/**
 * Root-field arguments that only choose where a subscription starts. They cannot change what
 * an event renders to, so subscribers that differ only in them share one execution.
 */
const START_ARGUMENTS = new Set(['after'])

/** What one subscription asks for: a document, its variables, and who asks. */
export interface SharedOperation {
  readonly document: DocumentNode
  readonly operationName: string | null | undefined
  readonly variables: Readonly<Record<string, unknown>> | null | undefined
  readonly viewer: Viewer | null
  /** The GraphQL context events execute with (the first subscriber's stands for its group). */
  readonly contextValue: unknown
}

/** Per event of a batch: the serialized `next` payload, or null when the event is filtered out. */
export type RenderedBatch = readonly (string | null)[]

export interface SharedExecutionsOptions {
  readonly schema: GraphQLSchema
  /** What clients see of an execution error (unexpected ones masked and logged). */
  readonly maskError: (error: GraphQLError) => GraphQLError
  /** Called once per rendered event with its publish time (delivery latency metrics). */
  readonly onRendered?: ((event: StoredEvent) => void) | undefined
}

/** A group of subscriptions that share one execution and one serialized payload per event. */
export interface ExecutionGroup extends FeedGroup<RenderedBatch> {
  /** Drops one subscriber; the group is forgotten with its last one. */
  release(): void
}

/** Hands out execution groups, one per feed, operation, variables and visibility. */
export interface SharedExecutions {
  /** The group for `operation` following `channels` with `filter`; create or join it. */
  group(
    channels: readonly string[],
    operation: SharedOperation,
    filter: ((event: StoredEvent) => boolean) | undefined,
  ): ExecutionGroup
  /** Groups alive now. */
  size(): number
}

/**
 * Who may see what: role and scopes. Two subscribers with the same visibility, document and
 * variables on the same channels get the same result for every event, because the schema's
 * event fields read the viewer only through role and scopes (the `sub` picks channels, and the
 * channels are part of the group's key).
 */
function visibilityKey(viewer: Viewer | null): string {
  if (!viewer) return '-'
  return `${viewer.role}|${[...viewer.scopes].sort().join(',')}`
}

/** JSON with object keys sorted, so equal variables give equal keys. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (!inner || typeof inner !== 'object' || Array.isArray(inner)) return inner
    return Object.fromEntries(
      Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
    )
  })
}

/**
 * `document` without the start arguments of its operation's root fields, and the variables
 * the rest still uses. Executing it for an event gives the same result as the original.
 */
function withoutStartArguments(
  document: DocumentNode,
  operationName: string | null | undefined,
): { document: DocumentNode; used: Set<string> } {
  const operation = getOperationAST(document, operationName)
  const rewritten = visit(document, {
    OperationDefinition: (node) => (node === operation ? undefined : null),
    Field: {
      enter(node, _key, _parent, _path, ancestors) {
        // Only root fields: their parent's parent is the operation itself.
        const owner = ancestors[ancestors.length - 2]
        if (owner !== operation || !node.arguments?.length) return undefined
        return {
          ...node,
          arguments: node.arguments.filter((argument) => !START_ARGUMENTS.has(argument.name.value)),
        }
      },
    },
  })
  const used = new Set<string>()
  visit(rewritten, {
    VariableDefinition: () => false,
    Variable: (node) => {
      used.add(node.name.value)
    },
  })
  return { document: rewritten, used }
}

/** A document as groups key and execute it: without start arguments, printed. */
interface Shareable {
  readonly document: DocumentNode
  /** Variables the rewritten document still uses. */
  readonly used: ReadonlySet<string>
  readonly printed: string
}

/** Serializes a result, masking its errors for clients. */
function serialize(
  result: ExecutionResult,
  maskError: SharedExecutionsOptions['maskError'],
): string {
  const { errors, ...rest } = result
  return JSON.stringify(errors ? { ...rest, errors: errors.map(maskError) } : rest)
}

/** Creates the registry of shared executions of one transport. */
export function createSharedExecutions({
  schema,
  maskError,
  onRendered = () => {},
}: SharedExecutionsOptions): SharedExecutions {
  const groups = new Map<string, ExecutionGroup>()
  // Subscribers of one query share its parsed document (Yoga's parser cache): it is rewritten
  // and printed once, not once per subscriber.
  const rewritten = new WeakMap<DocumentNode, Map<string, Shareable>>()
  const shareable = (document: DocumentNode, operationName: string | null | undefined) => {
    const byOperation = rewritten.get(document) ?? new Map<string, Shareable>()
    rewritten.set(document, byOperation)
    let found = byOperation.get(operationName ?? '')
    if (!found) {
      const { document: stripped, used } = withoutStartArguments(document, operationName)
      found = { document: stripped, used, printed: print(stripped) }
      byOperation.set(operationName ?? '', found)
    }
    return found
  }

  return {
    group(channels, operation, filter) {
      const { document, used, printed } = shareable(operation.document, operation.operationName)
      const variables = Object.fromEntries(
        Object.entries(operation.variables ?? {}).filter(([name]) => used.has(name)),
      )
      const key = [
        [...channels].sort().join(','),
        visibilityKey(operation.viewer),
        operation.operationName ?? '',
        canonicalJson(variables),
        printed,
      ].join('\n')
      const existing = groups.get(key) as (ExecutionGroup & { members: number }) | undefined
      if (existing) {
        existing.members += 1
        return existing
      }
      const args = {
        schema,
        document,
        operationName: operation.operationName ?? null,
        variableValues: operation.variables ?? null,
        contextValue: operation.contextValue,
      }
      const renderOne = (event: DeliveredEvent): string | null | Promise<string> => {
        if (filter && !filter(event)) return null
        onRendered(event)
        const result = execute({ ...args, rootValue: event })
        return result instanceof Promise
          ? result.then((done) => serialize(done, maskError))
          : serialize(result, maskError)
      }
      const group = {
        members: 1,
        render(batch: readonly DeliveredEvent[]): RenderedBatch | Promise<RenderedBatch> {
          const rendered = batch.map(renderOne)
          return rendered.some((item) => item instanceof Promise)
            ? Promise.all(rendered)
            : (rendered as RenderedBatch)
        },
        release() {
          group.members -= 1
          if (group.members === 0 && groups.get(key) === group) groups.delete(key)
        },
      }
      groups.set(key, group)
      return group
    },
    size: () => groups.size,
  }
}
