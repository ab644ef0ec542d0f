import type { CORSOptions } from 'graphql-yoga'

const PREFLIGHT_MAX_AGE = 600 // s a browser may cache a preflight answer

/** Which browser origins may call Switchboard: one rule for CORS and the WebSocket `Origin`. */
export interface OriginPolicy {
  /**
   * Whether a request with this `Origin` header may proceed. No `Origin` (a backend, a CLI, a
   * native app) is allowed: the check protects browsers' users, not the API. An origin equal
   * to the request's own `Host` (GraphiQL and /admin served by this very instance) is allowed.
   */
  allows(origin: string | null | undefined, host?: string | null): boolean
  /**
   * Yoga's `cors` option: answers an allowed origin with `Access-Control-Allow-Origin` set to
   * it; any other origin gets no CORS headers, so its browser refuses to hand over the answer.
   */
  readonly cors: (request: Request) => CORSOptions
}

type Rule = (origin: URL) => boolean

/** One `ALLOWED_ORIGINS` entry as a predicate: `*`, `scheme://host[:port]` or `scheme://host:*`. */
function compileRule(entry: string): Rule {
  if (entry === '*') return () => true
  const anyPort = entry.endsWith(':*')
  const pattern = new URL(anyPort ? entry.slice(0, -2) : entry)
  if (anyPort) {
    return (origin) => origin.protocol === pattern.protocol && origin.hostname === pattern.hostname
  }
  return (origin) => origin.origin === pattern.origin
}

/** The origin as a URL when it is an http(s) origin; `null` (opaque origins) and junk are not. */
function parseOrigin(origin: string): URL | undefined {
  try {
    const url = new URL(origin)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}

/**
 * Builds the origin policy from `ALLOWED_ORIGINS` entries (as `loadConfig` validated them:
 * `*`, `scheme://host[:port]`, `scheme://host:*` for any port).
 */
export function createOriginPolicy(allowedOrigins: readonly string[]): OriginPolicy {
  const rules = allowedOrigins.map(compileRule)
  const allows = (origin: string | null | undefined, host?: string | null) => {
    if (origin === undefined || origin === null) return true
    const url = parseOrigin(origin)
    if (!url) return false
    if (host && url.host === host.toLowerCase()) return true
    return rules.some((rule) => rule(url))
  }
  return {
    allows,
    cors: (request) => {
      const origin = request.headers.get('origin')
      if (origin === null || !allows(origin, request.headers.get('host'))) return false
      // No `origin` list: Yoga then echoes the request's origin and adds `Vary: Origin`.
      return {
        methods: ['GET', 'POST'],
        // Tokens travel in the Authorization header, never in cookies.
        credentials: false,
        maxAge: PREFLIGHT_MAX_AGE,
      }
    },
  }
}
