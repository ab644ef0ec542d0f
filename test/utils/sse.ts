/** One dispatched server-sent event. */
export interface SseEvent {
  /** The `event:` field; `message` when absent, as EventSource does. */
  readonly event: string
  /** The `id:` field of this event's block, when it had one. */
  readonly id: string | undefined
  /** The `data:` lines joined with `\n`. */
  readonly data: string
}

/** A `text/event-stream` response being read, as a browser EventSource would read it. */
export interface SseStream {
  readonly status: number
  readonly contentType: string | null
  /** Every event dispatched so far. */
  readonly events: SseEvent[]
  /** The last `id:` seen, what EventSource sends back as `Last-Event-ID` on reconnect. */
  readonly lastEventId: string | undefined
  /** Resolves once `count` events matching `match` (all by default) arrived. */
  waitForEvents(
    count: number,
    match?: (event: SseEvent) => boolean,
    timeoutMs?: number,
  ): Promise<SseEvent[]>
  /** Resolves when the server ended the stream. */
  readonly ended: Promise<void>
  /** Aborts the request, like `EventSource.close()` or a dropped connection. */
  close(): void
}

/**
 * Opens `url` with `fetch` and parses the body as a `text/event-stream` (Node 20 has no
 * EventSource). Resolves once the response headers arrived.
 */
export async function openSse(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<SseStream> {
  const abort = new AbortController()
  const response = await fetch(url, {
    ...init,
    headers: { accept: 'text/event-stream', ...init.headers },
    signal: abort.signal,
  })
  const events: SseEvent[] = []
  let lastEventId: string | undefined
  let notify: () => void = () => {}
  let finished = false

  const dispatchBlock = (block: string) => {
    let event = 'message'
    let id: string | undefined
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'data') data.push(value)
      else if (field === 'id') id = value
    }
    if (id !== undefined) lastEventId = id
    if (data.length > 0) events.push({ event, id, data: data.join('\n') })
  }

  const ended = (async () => {
    if (!response.body) return
    const decoder = new TextDecoder()
    let buffer = ''
    const reader = response.body.getReader()
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n')
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          dispatchBlock(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
        }
        notify()
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error
    } finally {
      finished = true
      notify()
    }
  })()
  // The stream ending by abort is expected; surface only other failures, through `ended`.
  ended.catch(() => {})

  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    events,
    get lastEventId() {
      return lastEventId
    },
    waitForEvents(count, match = () => true, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const matching = events.filter(match)
          if (matching.length >= count) {
            done()
            resolve(matching.slice(0, count))
          } else if (finished) {
            done()
            reject(new Error(`stream ended after ${JSON.stringify(events).slice(0, 1_000)}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`timed out waiting for ${count} events; got ${JSON.stringify(events)}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          notify = () => {}
        }
        notify = check
        check()
      })
    },
    ended,
    close() {
      abort.abort()
    },
  }
}
