/**
 * A push-based async iterator: producers `push`, one consumer iterates. `return()` ends it at
 * once, even while the consumer is waiting, and runs `onClose` (unsubscribe, stop timers).
 */
export interface AsyncQueue<T> extends AsyncIterableIterator<T> {
  push(value: T): void
  /** Ends iteration after the values already pushed. */
  end(): void
  /** Ends iteration with `error` after the values already pushed. */
  fail(error: unknown): void
  /** Resolves when fewer than `limit` values wait to be consumed (or the queue closed). */
  waitForRoom(limit: number): Promise<void>
  /** Stops iteration now, dropping what is buffered, and runs `onClose`. */
  return(): Promise<IteratorResult<T>>
  readonly closed: boolean
  /** Values pushed and not yet consumed. */
  readonly size: number
}

/** Creates an `AsyncQueue`; `onClose` runs once, when the consumer stops or the queue ends. */
export function createAsyncQueue<T>(onClose: () => void = () => {}): AsyncQueue<T> {
  const buffer: T[] = []
  let waiting: ((result: IteratorResult<T>) => void) | undefined
  let rejectWaiting: ((error: unknown) => void) | undefined
  let roomWaiters: Array<{ limit: number; resolve: () => void }> = []
  let ended = false
  let failure: { error: unknown } | undefined
  let closed = false

  const close = () => {
    if (closed) return
    closed = true
    ended = true
    buffer.length = 0
    for (const waiter of roomWaiters) waiter.resolve()
    roomWaiters = []
    onClose()
  }
  const releaseRoom = () => {
    if (roomWaiters.length === 0) return
    roomWaiters = roomWaiters.filter((waiter) => {
      if (buffer.length >= waiter.limit) return true
      waiter.resolve()
      return false
    })
  }

  const queue: AsyncQueue<T> = {
    get closed() {
      return closed
    },
    get size() {
      return buffer.length
    },
    push(value) {
      if (ended) return
      if (waiting) {
        const resolve = waiting
        waiting = undefined
        rejectWaiting = undefined
        resolve({ value, done: false })
      } else {
        buffer.push(value)
      }
    },
    end() {
      ended = true
      if (buffer.length === 0 && waiting) {
        waiting({ value: undefined, done: true })
        waiting = undefined
        close()
      }
    },
    fail(error) {
      if (ended) return
      failure = { error }
      ended = true
      if (buffer.length === 0 && rejectWaiting) {
        rejectWaiting(error)
        waiting = undefined
        close()
      }
    },
    waitForRoom(limit) {
      if (closed || buffer.length < limit) return Promise.resolve()
      return new Promise((resolve) => roomWaiters.push({ limit, resolve }))
    },
    next() {
      if (buffer.length > 0) {
        const value = buffer.shift() as T
        releaseRoom()
        return Promise.resolve({ value, done: false })
      }
      if (ended) {
        close()
        if (failure) {
          const { error } = failure
          failure = undefined
          return Promise.reject(error)
        }
        return Promise.resolve({ value: undefined, done: true })
      }
      return new Promise((resolve, reject) => {
        waiting = resolve
        rejectWaiting = reject
      })
    },
    return() {
      if (waiting) waiting({ value: undefined, done: true })
      waiting = undefined
      rejectWaiting = undefined
      close()
      return Promise.resolve({ value: undefined, done: true })
    },
    [Symbol.asyncIterator]() {
      return queue
    },
  }
  return queue
}
