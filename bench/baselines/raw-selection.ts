/**
 * The raw baseline's stand-in for GraphQL execution: reads a `parkingUpdated` subscription
 * document once and turns it into a projection of the flat event object (fields, aliases,
 * `__typename`, inline fragments and fragment spreads on the event's types). Enough for the
 * bench documents; anything else is refused.
 */
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql'
import type { SpaceEvent } from './parking-slice.js'

// Type conditions the event satisfies: its own type, its interface and the union.
const MATCHING_TYPES = new Set(['SpaceStateChanged', 'Event', 'ParkingEvent'])

/** A compiled subscription: which lot it follows and how to render an event for it. */
export interface CompiledSelection {
  readonly lotId: string
  /** The `payload` of a `next` message for `event`, as JSON. */
  render(event: SpaceEvent): string
}

type Projection = ReadonlyArray<readonly [key: string, field: string]>

function collect(
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  into: Array<readonly [string, string]>,
): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.selectionSet) throw new Error(`${selection.name.value} has no sub-fields`)
      into.push([selection.alias?.value ?? selection.name.value, selection.name.value])
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const on = selection.typeCondition?.name.value
      if (on === undefined || MATCHING_TYPES.has(on))
        collect(selection.selectionSet, fragments, into)
    } else {
      const fragment = fragments.get(selection.name.value)
      if (!fragment) throw new Error(`unknown fragment ${selection.name.value}`)
      if (MATCHING_TYPES.has(fragment.typeCondition.name.value)) {
        collect(fragment.selectionSet, fragments, into)
      }
    }
  }
}

function argumentValue(value: ValueNode, variables: Record<string, unknown>): unknown {
  if (value.kind === Kind.VARIABLE) return variables[value.name.value]
  if (value.kind === Kind.STRING || value.kind === Kind.INT) return value.value
  if (value.kind === Kind.NULL) return null
  throw new Error(`unsupported argument value ${value.kind}`)
}

/** Parses `query` and checks it is one `parkingUpdated` subscription; cache by query text. */
export function readSubscription(query: string): {
  document: DocumentNode
  operation: OperationDefinitionNode
  projection: Projection
  responseKey: string
} {
  const document = parse(query)
  const fragments = new Map<string, FragmentDefinitionNode>()
  let operation: OperationDefinitionNode | undefined
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition)
    else if (definition.kind === Kind.OPERATION_DEFINITION) operation = definition
  }
  if (operation?.operation !== 'subscription') throw new Error('expected a subscription')
  const [root] = operation.selectionSet.selections
  if (root?.kind !== Kind.FIELD || root.name.value !== 'parkingUpdated' || !root.selectionSet) {
    throw new Error('expected parkingUpdated { ... }')
  }
  const projection: Array<readonly [string, string]> = []
  collect(root.selectionSet, fragments, projection)
  return { document, operation, projection, responseKey: root.alias?.value ?? root.name.value }
}

/** Binds a read subscription to its variables: its lot and its renderer. */
export function compileSelection(
  read: ReturnType<typeof readSubscription>,
  variables: Record<string, unknown>,
): CompiledSelection {
  const [root] = read.operation.selectionSet.selections
  if (root?.kind !== Kind.FIELD) throw new Error('expected a field')
  const lotArgument = root.arguments?.find((argument) => argument.name.value === 'lotId')
  const lotId = lotArgument ? argumentValue(lotArgument.value, variables) : undefined
  if (typeof lotId !== 'string' || lotId === '') throw new Error('lotId is required')
  return {
    lotId,
    render(event) {
      const data: Record<string, unknown> = {}
      for (const [key, field] of read.projection) {
        data[key] = event[field as keyof SpaceEvent] ?? null
      }
      return JSON.stringify({ data: { [read.responseKey]: data } })
    },
  }
}
