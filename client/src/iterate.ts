import type { Sink } from 'graphql-ws'

/**
 * Turns a sink-based subscription into an async iterator: values are buffered until read, an
 * error is thrown from the `next()` after the buffered values, and `return()` (a `break` out of
 * `for await`) unsubscribes.
 */
export function iterateSink<T>(subscribe: (sink: Sink<T>) => () => void): AsyncIterableIterator<T> {
  const pending: T[] = []
  let failure: { error: unknown } | undefined
  let done = false
  let wake: (() => void) | undefined
  const notify = () => {
    wake?.()
    wake = undefined
  }
  const unsubscribe = subscribe({
    next(value) {
      pending.push(value)
      notify()
    },
    error(error) {
      failure = { error }
      done = true
      notify()
    },
    complete() {
      done = true
      notify()
    },
  })
  const iterator: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (pending.length > 0) return { done: false, value: pending.shift() as T }
        if (failure) {
          const { error } = failure
          failure = undefined
          throw error
        }
        if (done) return { done: true, value: undefined }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
      }
    },
    async return(): Promise<IteratorResult<T>> {
      done = true
      pending.length = 0
      failure = undefined
      unsubscribe()
      notify()
      return { done: true, value: undefined }
    },
    [Symbol.asyncIterator]() {
      return iterator
    },
  }
  return iterator
}
