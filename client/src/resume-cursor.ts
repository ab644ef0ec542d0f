import { getOperationAST, Kind, parse } from 'graphql'

/**
 * The name of the variable a subscription passes as its root field's `after` argument, e.g.
 * `since` for `subscription ($since: String) { feed: parkingUpdated(lotId: "1", after: $since) }`.
 * Undefined when the operation is not a subscription, does not parse, or gives `after` no
 * variable: such an operation cannot be resumed and is sent unchanged.
 */
export function resumeVariableOf(query: string, operationName?: string | null): string | undefined {
  let operation: ReturnType<typeof getOperationAST>
  try {
    operation = getOperationAST(parse(query), operationName)
  } catch {
    // The server answers a malformed query with its own error; nothing to track here.
    return undefined
  }
  if (operation?.operation !== 'subscription') return undefined
  const rootField = operation.selectionSet.selections.find(
    (selection) => selection.kind === Kind.FIELD,
  )
  const after = rootField?.arguments?.find((argument) => argument.name.value === 'after')
  return after?.value.kind === Kind.VARIABLE ? after.value.name.value : undefined
}

/**
 * The `cursor` of the event a `next` payload carries: the `cursor` field of its root field
 * (aliased or not). Undefined when the selection did not ask for `cursor`.
 */
export function cursorOf(result: { readonly data?: unknown }): string | undefined {
  const { data } = result
  if (typeof data !== 'object' || data === null) return undefined
  const [root] = Object.values(data)
  if (typeof root !== 'object' || root === null) return undefined
  const cursor = (root as { cursor?: unknown }).cursor
  return typeof cursor === 'string' ? cursor : undefined
}
