import type { IncomingMessage, ServerResponse } from 'node:http'

const CHECK_TIMEOUT = 2_000 // ms; a dependency slower than this counts as down

export interface HealthOptions {
  readonly version: string
  /** Live connection and subscription counts. */
  readonly counts: () => { connections: number; subscriptions: number }
  /** Readiness checks by name; each resolves when its dependency answers. */
  readonly checks: Readonly<Record<string, () => Promise<void>>>
  /** True while draining for shutdown: readiness fails so load balancers stop routing here. */
  readonly draining: () => boolean
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(JSON.stringify(body))
}

async function runCheck(check: () => Promise<void>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT)
  })
  try {
    await Promise.race([check(), timeout])
    return 'up'
  } catch {
    return 'down'
  } finally {
    clearTimeout(timer)
  }
}

/**
 * `/health` (liveness: always 200 while the process serves, with counts and uptime) and
 * `/ready` (200 only when every dependency answers and the instance is not draining, else 503).
 * Returns a handler that answers those paths and returns false for any other.
 */
export function createHealthRoutes({ version, counts, checks, draining }: HealthOptions) {
  const startedAt = Date.now()
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/health') {
      sendJson(res, 200, {
        status: 'ok',
        ...counts(),
        uptime: Math.round((Date.now() - startedAt) / 1000),
        version,
      })
      return true
    }
    if (path === '/ready') {
      const names = Object.keys(checks)
      const results = await Promise.all(
        names.map((name) => runCheck(checks[name] as () => Promise<void>)),
      )
      const dependencies = Object.fromEntries(names.map((name, i) => [name, results[i]]))
      const ready = !draining() && results.every((result) => result === 'up')
      sendJson(res, ready ? 200 : 503, {
        status: ready ? 'ready' : 'unavailable',
        draining: draining(),
        dependencies,
      })
      return true
    }
    return false
  }
}
