/**
 * Wraps `source` so that it can be ended at once with an error, even while its consumer waits
 * for the next value: `end(error)` rejects that wait (or the next one) with `error` and returns
 * `source`. `onEnd` is called once however the iteration ends (done, failed, returned, ended).
 */
export function endable<T>(source: AsyncIterable<T>, onEnd: () => void) {
  const inner = source[Symbol.asyncIterator]()
  let failure: Error | undefined
  let reject: (error: Error) => void = () => {}
  const ended = new Promise<never>((_, fail) => {
    reject = fail
  })
  ended.catch(() => {})
  let open = true
  const finish = () => {
    if (!open) return
    open = false
    onEnd()
  }
  const iterator: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]() {
      return iterator
    },
    async next() {
      try {
        if (failure) throw failure
        const step = await Promise.race([inner.next(), ended])
        if (step.done) finish()
        return step
      } catch (error) {
        finish()
        throw error
      }
    },
    async return(value?: unknown) {
      finish()
      return (await inner.return?.(value)) ?? { done: true, value: undefined }
    },
  }
  const end = (error: Error) => {
    if (failure || !open) return
    failure = error
    reject(error)
    Promise.resolve(inner.return?.()).catch(() => {})
  }
  return { iterator, end }
}

/**
 * `source` with each value passed through `map`, calling `ended` once when the iteration
 * finishes, fails or is returned early.
 */
export function onEnd<T, U = T>(
  source: AsyncIterable<T>,
  ended: () => void,
  map: (value: T) => U = (value) => value as unknown as U,
): AsyncIterableIterator<U> {
  const iterator = source[Symbol.asyncIterator]()
  let open = true
  const end = () => {
    if (!open) return
    open = false
    ended()
  }
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    async next() {
      try {
        const step = await iterator.next()
        if (step.done) {
          end()
          return step
        }
        return { done: false, value: map(step.value) }
      } catch (error) {
        end()
        throw error
      }
    },
    async return(value?: unknown) {
      end()
      await iterator.return?.(value)
      return { done: true, value: undefined }
    },
  }
}
