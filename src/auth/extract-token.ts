/** Where a token may come from on one request or connection. */
export interface TokenSources {
  /** graphql-ws `connection_init` payload. */
  readonly connectionParams?: Readonly<Record<string, unknown>> | undefined
  /** The HTTP `Authorization` header of the request or WebSocket upgrade. */
  readonly authorizationHeader?: string | null | undefined
  /** The request URL, for `?token=` (EventSource and browsers cannot set headers). */
  readonly url?: string | undefined
}

const BEARER = /^Bearer\s+(\S+)$/i

/**
 * Finds the bearer token: `connection_init` `{ token }` or `{ Authorization: "Bearer ..." }`
 * (any case), then the `Authorization` header, then `?token=`. Returns `undefined` when absent.
 */
export function extractToken({
  connectionParams,
  authorizationHeader,
  url,
}: TokenSources): string | undefined {
  if (connectionParams) {
    const { token } = connectionParams
    if (typeof token === 'string' && token) return token
    for (const [key, value] of Object.entries(connectionParams)) {
      if (key.toLowerCase() === 'authorization' && typeof value === 'string') {
        const bearer = BEARER.exec(value)?.[1]
        if (bearer) return bearer
      }
    }
  }
  const fromHeader = authorizationHeader ? BEARER.exec(authorizationHeader)?.[1] : undefined
  if (fromHeader) return fromHeader
  if (url) {
    const fromQuery = new URL(url, 'http://localhost').searchParams.get('token')
    if (fromQuery) return fromQuery
  }
  return undefined
}
