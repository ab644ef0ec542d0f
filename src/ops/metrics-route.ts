import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'

export interface MetricsRouteOptions {
  /** The registry to serve. */
  readonly registry: Registry
  /**
   * When set (`METRICS_TOKEN`), `/metrics` answers 401 unless the request carries
   * `Authorization: Bearer <token>`. Unset (default): anyone who reaches the port may scrape.
   */
  readonly token?: string | undefined
}

const BEARER = /^Bearer\s+(\S+)$/i
const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * `GET /metrics`: the registry in the Prometheus text format. Returns a handler that answers
 * that path and returns false for any other.
 */
export function createMetricsRoute({ registry, token }: MetricsRouteOptions) {
  // Comparing digests keeps the comparison constant-time whatever length the caller sends.
  const expected = token === undefined ? undefined : digest(token)
  const authorized = (header: string | undefined) => {
    if (!expected) return true
    const presented = header ? BEARER.exec(header)?.[1] : undefined
    return presented !== undefined && timingSafeEqual(digest(presented), expected)
  }
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end()
      return true
    }
    if (!authorized(req.headers.authorization)) {
      res.writeHead(401, {
        'Content-Type': 'text/plain; charset=utf-8',
        'WWW-Authenticate': 'Bearer realm="metrics"',
      })
      res.end('/metrics requires Authorization: Bearer <METRICS_TOKEN>\n')
      return true
    }
    const body = await registry.metrics()
    res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' })
    res.end(req.method === 'HEAD' ? undefined : body)
    return true
  }
}
