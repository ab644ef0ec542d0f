import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Publisher } from '../events/publisher.js'

/**
 * Shutdown bookkeeping for one instance: whether it is draining, and the work in flight that
 * shutdown lets finish (HTTP requests and publish transactions) before closing the bus and
 * the database.
 */
export interface Drain {
  /** True once `start()` ran: readiness fails and new HTTP requests are refused. */
  readonly draining: boolean
  /** Counts one piece of work in flight; call the returned function (once) when it ends. */
  begin(): () => void
  /** Enters draining; resolves once no counted work is in flight (at once when none is). */
  start(): Promise<void>
}

/** Creates the drain state of one instance, not draining and with nothing in flight. */
export function createDrain(): Drain {
  let draining = false
  let inFlight = 0
  let idle: Array<() => void> = []
  const settle = () => {
    if (inFlight > 0) return
    for (const resolve of idle) resolve()
    idle = []
  }
  return {
    get draining() {
      return draining
    },
    begin() {
      inFlight += 1
      let ended = false
      return () => {
        if (ended) return
        ended = true
        inFlight -= 1
        settle()
      }
    },
    start() {
      draining = true
      return new Promise<void>((resolve) => {
        idle.push(resolve)
        settle()
      })
    },
  }
}

/**
 * Long-lived responses (SSE, multipart subscriptions) that shutdown ends rather than waits
 * for: they only finish when the client leaves.
 */
export function isStreamRequest(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? ''
  return accept.includes('text/event-stream') || accept.includes('multipart/mixed')
}

/**
 * Answers a request that arrived on an open keep-alive connection after draining began:
 * 503 with `Connection: close`, so the client or the load balancer retries on another
 * instance. Nothing has run, so retrying a publish is safe.
 */
export function refuseWhileDraining(res: ServerResponse): void {
  res.writeHead(503, {
    'Content-Type': 'application/json',
    Connection: 'close',
    'Retry-After': '1',
  })
  res.end(
    JSON.stringify({
      errors: [
        {
          message: 'This instance is shutting down; retry on another one',
          extensions: { code: 'SHUTTING_DOWN' },
        },
      ],
    }),
  )
}

/** `publisher`, with every publish counted as work in flight so shutdown lets it commit. */
export function drainingPublisher(drain: Drain, publisher: Publisher): Publisher {
  return {
    async publish(work, options) {
      const end = drain.begin()
      try {
        return await publisher.publish(work, options)
      } finally {
        end()
      }
    },
  }
}
