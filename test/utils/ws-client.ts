import type { TypedDocumentNode } from '@graphql-typed-document-node/core'
import { type FormattedExecutionResult, print } from 'graphql'
import { type Client, type ClientOptions, createClient } from 'graphql-ws'
import WebSocket from 'ws'

/** A real graphql-ws client over `ws`, connecting at once, not retrying unless told to. */
export function connectClient(
  url: string,
  token: string | undefined,
  options: Partial<ClientOptions> = {},
): Client {
  return createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: token ? { token } : {},
    onNonLazyError: () => {},
    ...options,
  })
}

/** Everything a subscription produced so far, with ways to wait for more. */
export interface Subscription<TData> {
  readonly results: FormattedExecutionResult<TData>[]
  /** `data` of each result, in arrival order. */
  readonly data: TData[]
  readonly error: unknown
  readonly completed: boolean
  /** Resolves once at least `count` results arrived; rejects on error or timeout. */
  waitForCount(count: number, timeoutMs?: number): Promise<TData[]>
  /** Resolves once the subscription ended with an error or completed. */
  waitForEnd(timeoutMs?: number): Promise<void>
  /** Stops the subscription (sends `complete`). */
  unsubscribe(): void
}

/** Subscribes with a typed document and records every result. */
export function subscribe<TData, TVariables extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
): Subscription<TData> {
  const results: FormattedExecutionResult<TData>[] = []
  const data: TData[] = []
  let error: unknown
  let completed = false
  let notify: () => void = () => {}
  const changed = () => notify()
  const unsubscribe = client.subscribe<TData>(
    { query: print(document), variables },
    {
      next: (result) => {
        results.push(result as FormattedExecutionResult<TData>)
        if (result.data) data.push(result.data)
        changed()
      },
      error: (err) => {
        error = err
        changed()
      },
      complete: () => {
        completed = true
        changed()
      },
    },
  )
  const waitUntil = (done: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (done()) {
          clearTimeout(timer)
          notify = () => {}
          resolve()
        }
      }
      const timer = setTimeout(() => {
        notify = () => {}
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(results).slice(0, 2_000)}`,
          ),
        )
      }, timeoutMs)
      notify = check
      check()
    })
  return {
    results,
    data,
    get error() {
      return error
    },
    get completed() {
      return completed
    },
    async waitForCount(count, timeoutMs = 10_000) {
      await waitUntil(
        () => data.length >= count || error !== undefined,
        timeoutMs,
        `${count} results`,
      )
      if (error !== undefined && data.length < count)
        throw new Error(`subscription failed: ${JSON.stringify(error)}`)
      return data.slice(0, count)
    },
    waitForEnd(timeoutMs = 10_000) {
      return waitUntil(
        () => completed || error !== undefined,
        timeoutMs,
        'the end of the subscription',
      )
    },
    unsubscribe,
  }
}

/** How a client's socket closed. */
export interface Closed {
  readonly code: number
  readonly reason: string
  /** `Date.now()` when the client saw the close. */
  readonly at: number
}

/**
 * Resolves when `client`'s socket next closes, with its code and reason. Call it right after
 * `connectClient`, before the socket can close.
 */
export function nextClose(client: Client): Promise<Closed> {
  return new Promise((resolve) => {
    const off = client.on('closed', (event) => {
      off()
      const { code, reason } = event as { code: number; reason: string }
      resolve({ code, reason: String(reason), at: Date.now() })
    })
  })
}

/** Resolves once `client` got `connection_ack`; rejects when it closes first. */
export function connected(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    const offConnected = client.on('connected', () => {
      offConnected()
      offClosed()
      resolve()
    })
    const offClosed = client.on('closed', (event) => {
      offConnected()
      offClosed()
      reject(new Error(`closed before ack: ${(event as { code: number }).code}`))
    })
  })
}

/** A `ws` WebSocket class that sends `headers` with the upgrade request (e.g. Authorization). */
export function webSocketWithHeaders(headers: Readonly<Record<string, string>>): typeof WebSocket {
  return class extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { headers: { ...headers } })
    }
  } as typeof WebSocket
}
