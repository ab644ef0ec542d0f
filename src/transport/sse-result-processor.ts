import { isAsyncIterable, type Plugin } from 'graphql-yoga'
import type { Metrics } from '../ops/metrics.js'

const KEEP_ALIVE_INTERVAL = 12_000 // ms; below common proxy idle timeouts
const RECONNECT_DELAY = 1_000 // ms, the `retry:` hint for EventSource

type Result = { data?: unknown; errors?: readonly unknown[]; extensions?: unknown }

/**
 * The cursor of a subscription result: every streamed event type has a `cursor` field, so a
 * result whose single root field carries one is an event a browser can resume after.
 */
function cursorOf(result: Result): string | undefined {
  const data = result.data
  if (!data || typeof data !== 'object') return undefined
  const roots = Object.values(data)
  const root = roots.length === 1 ? roots[0] : undefined
  const cursor =
    root && typeof root === 'object' ? (root as { cursor?: unknown }).cursor : undefined
  return typeof cursor === 'string' && !/[\r\n]/.test(cursor) ? cursor : undefined
}

function serialize(result: Result): string {
  const { data, errors, extensions } = result
  return JSON.stringify({ data, errors, extensions })
}

export interface SseOptions {
  /** Counts each stream as an `sse` connection, and the messages it sends. */
  readonly metrics: Metrics
}

/**
 * Serves subscription results as `text/event-stream` like Yoga does, plus an `id:` line with
 * the event's cursor. A browser `EventSource` that reconnects sends it back as
 * `Last-Event-ID`, and the subscription resumes after it with nothing lost.
 */
export function useSseCursors({ metrics }: SseOptions): Plugin {
  return {
    // The server context is the operation's GraphQL context: Yoga extends it in place.
    onResultProcess({ request, result, setResultProcessor, serverContext: operation }) {
      const accept = request.headers.get('accept') ?? ''
      if (!isAsyncIterable(result) || !accept.includes('text/event-stream')) return
      setResultProcessor((input, fetchAPI) => {
        const iterator = (input as AsyncIterable<Result>)[Symbol.asyncIterator]()
        const encoder = new fetchAPI.TextEncoder()
        let keepAlive: NodeJS.Timeout | undefined
        let closeConnection = () => {}
        const finish = () => {
          clearInterval(keepAlive)
          closeConnection()
        }
        const body = new fetchAPI.ReadableStream<Uint8Array>({
          start(controller) {
            closeConnection = metrics.connectionOpened('sse')
            controller.enqueue(encoder.encode(`retry: ${RECONNECT_DELAY}\n:\n\n`))
            keepAlive = setInterval(() => {
              if ((controller.desiredSize ?? 0) > 0) controller.enqueue(encoder.encode(':\n\n'))
            }, KEEP_ALIVE_INTERVAL)
          },
          async pull(controller) {
            try {
              const { value, done } = await iterator.next()
              if (value) {
                const cursor = cursorOf(value)
                const id = cursor ? `id: ${cursor}\n` : ''
                controller.enqueue(
                  encoder.encode(`event: next\n${id}data: ${serialize(value)}\n\n`),
                )
                metrics.frameSent('sse', operation)
              }
              if (done) {
                finish()
                controller.enqueue(encoder.encode('event: complete\ndata:\n\n'))
                controller.close()
              }
            } catch (error) {
              finish()
              controller.error(error)
            }
          },
          async cancel() {
            finish()
            await iterator.return?.()
          },
        })
        return new fetchAPI.Response(body, {
          status: 200,
          headers: {
            'Content-Type': 'text/event-stream',
            'Cache-Control': 'no-cache',
            Connection: 'keep-alive',
            'X-Accel-Buffering': 'no',
          },
        })
      }, 'text/event-stream')
    },
  }
}
