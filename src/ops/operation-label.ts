import {
  type DocumentNode,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql'

/** How operators see an operation: its name when it has one, and the field it selects. */
export interface OperationLabel {
  /** The operation's name (`operationName` or the one in the document); null when anonymous. */
  readonly operationName: string | null
  /** The first field selected at the root, e.g. `parkingUpdated`; `unknown` when none. */
  readonly rootField: string
}

/** The first root field of `selections`, looking through inline fragments and spreads. */
function firstField(document: DocumentNode, selections: SelectionSetNode): string | undefined {
  for (const selection of selections.selections) {
    if (selection.kind === Kind.FIELD) return selection.name.value
    const fragment =
      selection.kind === Kind.INLINE_FRAGMENT
        ? selection
        : document.definitions.find(
            (definition) =>
              definition.kind === Kind.FRAGMENT_DEFINITION &&
              definition.name.value === selection.name.value,
          )
    if (fragment && 'selectionSet' in fragment) {
      const found = firstField(document, fragment.selectionSet)
      if (found) return found
    }
  }
  return undefined
}

/** Labels the operation of `document` that `operationName` picks (or its only one). */
export function labelOperation(
  document: DocumentNode,
  operationName?: string | null,
  operation: OperationDefinitionNode | null | undefined = getOperationAST(document, operationName),
): OperationLabel {
  return {
    operationName: operationName ?? operation?.name?.value ?? null,
    rootField: (operation && firstField(document, operation.selectionSet)) ?? 'unknown',
  }
}
