import type { ChannelFanout, FollowRequest } from '../context.js'
import type { FeedHub, FeedMember } from '../events/channel-feed.js'
import type { RenderedBatch, SharedExecutions, SharedOperation } from './shared-executions.js'
import type { SocketSink } from './ws-sockets.js'

/** A stream an operator can end with an error, telling when it ended (see the registry). */
export interface EndableStream {
  fail(error: unknown): void
  /** Calls `listener` once when the stream ends, however it ends. */
  onEnded(listener: () => void): void
}

/** An async iterator that yields nothing: it ends when returned, or fails with `fail(error)`. */
export interface ParkedStream extends AsyncIterableIterator<never>, EndableStream {
  return(): Promise<IteratorResult<never>>
}

/** The fan-out of one subscription, with the stream it parked once it followed its channels. */
export interface SocketFanout extends ChannelFanout {
  readonly stream: ParkedStream | undefined
}

const DONE: IteratorResult<never> = { done: true, value: undefined }

/**
 * Stands in for a subscription's event stream while the fan-out writes its frames: graphql-ws
 * waits on it, ends it on `complete` or close (which runs `onEnd` once), and turns its failure
 * into an `error` message.
 */
function parkedStream(onEnd: () => void): ParkedStream {
  const endListeners = [onEnd]
  let ended = false
  let failure: { error: unknown } | undefined
  let waiting:
    | { resolve(step: IteratorResult<never>): void; reject(error: unknown): void }
    | undefined
  const end = () => {
    if (ended) return
    ended = true
    for (const listener of endListeners) listener()
  }
  const stream: ParkedStream = {
    [Symbol.asyncIterator]: () => stream,
    next() {
      if (failure) {
        end()
        return Promise.reject(failure.error)
      }
      if (ended) return Promise.resolve(DONE)
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject }
      })
    },
    return() {
      end()
      waiting?.resolve(DONE)
      waiting = undefined
      return Promise.resolve(DONE)
    },
    onEnded(listener) {
      if (ended) listener()
      else endListeners.push(listener)
    },
    fail(error) {
      if (ended || failure) return
      failure = { error }
      if (!waiting) return
      end()
      waiting.reject(error)
      waiting = undefined
    },
  }
  return stream
}

export interface SocketFanoutOptions {
  readonly feeds: FeedHub
  readonly executions: SharedExecutions
  readonly sink: SocketSink
  /** The graphql-ws subscription id the frames carry. */
  readonly id: string
  readonly operation: Omit<SharedOperation, 'contextValue'>
  /** Lists the channels the subscription follows until the returned function is called. */
  readonly onFollow?: ((channels: readonly string[]) => () => void) | undefined
  /** Counts the frames written for this subscription (metrics, admin rates). */
  readonly onFrames: (count: number) => void
}

/**
 * The fan-out of one graphql-ws subscription: its channels' shared feed and its group's shared
 * executions write `next` frames straight to the socket; only the id differs per subscriber.
 */
export function createSocketFanout({
  feeds,
  executions,
  sink,
  id,
  operation,
  onFollow,
  onFrames,
}: SocketFanoutOptions): SocketFanout {
  const head = `{"id":${JSON.stringify(id)},"type":"next","payload":`
  let parked: ParkedStream | undefined
  return {
    get stream() {
      return parked
    },
    async follow({ channels, from, filter, onClose, context, recheck }: FollowRequest) {
      const group = executions.group(channels, { ...operation, contextValue: context }, filter)
      const unfollow = onFollow?.(channels)
      let leave: (() => void) | undefined
      const stream = parkedStream(() => {
        leave?.()
        group.release()
        unfollow?.()
        onClose()
      })
      const member: FeedMember<RenderedBatch> = {
        group,
        deliver(_batch, rendered) {
          if (!sink.open) return
          let frames = 0
          sink.batch(() => {
            for (const payload of rendered) {
              if (payload === null) continue
              sink.send(`${head}${payload}}`)
              frames += 1
            }
          })
          if (frames > 0) onFrames(frames)
        },
        drained: () => sink.drained(),
        fail: (error) => stream.fail(error),
        recheck,
      }
      try {
        leave = await feeds.join({ channels, from }, member)
      } catch (error) {
        await stream.return()
        throw error
      }
      parked = stream
      return stream
    },
  }
}
