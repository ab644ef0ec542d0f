import { createAsyncQueue } from './async-queue.js'
import type { Bus } from './bus.js'

export interface SnapshotStreamOptions<T> {
  /** The signal channel that says the projection changed. */
  readonly channel: string
  /** Reads the current state of the projection. */
  readonly load: () => Promise<T>
  /** Minimum spacing between two messages, in ms; changes in between are coalesced. */
  readonly intervalMs: number
  /** Called once when the stream ends, however it ends. */
  readonly onClose?: (() => void) | undefined
}

/**
 * Streams the current state of a projection: the snapshot first, then a fresh read after
 * changes, at most one message per `intervalMs` however many changes arrive in a burst. The
 * last change of a burst is always followed by a read, so the stream ends up current.
 */
export function openSnapshotStream<T>(
  bus: Bus,
  { channel, load, intervalMs, onClose = () => {} }: SnapshotStreamOptions<T>,
): AsyncIterableIterator<T> {
  let unsubscribe: () => void = () => {}
  let timer: NodeJS.Timeout | undefined
  const output = createAsyncQueue<T>(() => {
    unsubscribe()
    clearTimeout(timer)
    onClose()
  })
  let lastSentAt = 0
  let dirty = false
  let loading = false

  const send = async () => {
    if (output.closed) return
    loading = true
    dirty = false
    lastSentAt = Date.now()
    try {
      output.push(await load())
    } catch (error) {
      output.fail(error)
    } finally {
      loading = false
    }
    if (dirty) schedule()
  }
  const schedule = () => {
    if (timer || loading || output.closed) return
    const wait = Math.max(0, lastSentAt + intervalMs - Date.now())
    timer = setTimeout(() => {
      timer = undefined
      void send()
    }, wait)
  }

  bus
    .subscribe(channel, () => {
      dirty = true
      schedule()
    })
    .then(
      (stop) => {
        if (output.closed) stop()
        else unsubscribe = stop
        return send()
      },
      (error: unknown) => output.fail(error),
    )
  return output
}
