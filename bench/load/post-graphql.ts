import { type Agent, request } from 'node:http'

/** A GraphQL response body. */
export interface GraphqlResponse {
  readonly data?: unknown
  readonly errors?: readonly unknown[]
}

/**
 * POSTs one GraphQL operation with a bearer token over `agent` (keep-alive) and resolves with
 * the parsed body; rejects on a socket error or a body that is not JSON. A kept-alive socket
 * the server closed while idle (ECONNRESET before any answer) is retried once on a new one:
 * the server never saw that request.
 */
export async function postGraphql(
  agent: Agent,
  url: string,
  token: string,
  query: string,
  variables: unknown,
): Promise<GraphqlResponse> {
  const body = JSON.stringify({ query, variables })
  try {
    return await postOnce(agent, url, token, body)
  } catch (error) {
    if (!(error instanceof StaleSocketError)) throw error
    return postOnce(agent, url, token, body)
  }
}

class StaleSocketError extends Error {}

function postOnce(
  agent: Agent,
  url: string,
  token: string,
  body: string,
): Promise<GraphqlResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => {
          try {
            resolve(JSON.parse(text) as GraphqlResponse)
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`))
          }
        })
      },
    )
    req.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        req.reusedSocket && error.code === 'ECONNRESET'
          ? new StaleSocketError(error.message)
          : error,
      )
    })
    req.end(body)
  })
}
