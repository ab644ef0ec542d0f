import type { TypedDocumentNode } from '@graphql-typed-document-node/core'
import { type FormattedExecutionResult, print } from 'graphql'

/** Runs a typed operation over HTTP POST with a bearer token; returns the parsed result. */
export async function execute<TData, TVariables>(
  url: string,
  token: string | undefined,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
): Promise<FormattedExecutionResult<TData>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: print(document), variables }),
  })
  return (await response.json()) as FormattedExecutionResult<TData>
}

/** Like `execute`, but throws when the result has errors; returns `data`. */
export async function mustExecute<TData, TVariables>(
  url: string,
  token: string | undefined,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
): Promise<TData> {
  const result = await execute(url, token, document, variables)
  if (result.errors?.length || !result.data) {
    throw new Error(`operation failed: ${JSON.stringify(result.errors)}`)
  }
  return result.data
}
