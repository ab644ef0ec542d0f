import type { TypedDocumentNode } from '@graphql-typed-document-node/core'
import { type FormattedExecutionResult, print } from 'graphql'

/** An HTTP answer with its status and raw body, for tests about refusals and bad input. */
export interface RawResponse<TData = unknown> {
  readonly status: number
  /** The body as received, to check what it does not contain. */
  readonly text: string
  readonly result: FormattedExecutionResult<TData>
}

/** POSTs `body` as is to `url` (JSON content type unless overridden) and parses the answer. */
export async function postRaw<TData = unknown>(
  url: string,
  body: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<RawResponse<TData>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...headers,
    },
    body,
  })
  const text = await response.text()
  return { status: response.status, text, result: JSON.parse(text) }
}

/** Runs a typed operation like `execute`, keeping the status and the raw body. */
export function request<TData, TVariables>(
  url: string,
  token: string | undefined,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
): Promise<RawResponse<TData>> {
  return postRaw<TData>(
    url,
    JSON.stringify({ query: print(document), variables }),
    token ? { authorization: `Bearer ${token}` } : {},
  )
}

/** `extensions.code` of the first error, if any. */
export function errorCode(result: FormattedExecutionResult<unknown>): unknown {
  return result.errors?.[0]?.extensions?.['code']
}
