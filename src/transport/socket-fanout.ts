import type { ChannelFanout, FollowRequest } from '../context.js'
import type { FeedGroup, FeedHub, FeedMember } from '../events/channel-feed.js'
import type { DeliveredEvent } from '../events/stored-event.js'
import type { RenderedBatch, SharedExecutions, SharedOperation } from './shared-executions.js'
import type { SocketSink } from './ws-sockets.js'

/** A stream an operator can end with an error, telling when it ended (see the registry). */
export interface EndableStream {
  fail(error: unknown): void
  /** Calls `listener` once when the stream ends, however it ends. */
  onEnded(listener: () => void): void
}

/** Why a stream ended, when it failed. */
export interface StreamFailure {
  readonly error: unknown
}

/**
 * The stream a fanned-out subscription resolves with: an async iterator that yields nothing
 * (GraphQL's `subscribe` wants one), which the transport only watches for its end. It ends
 * when returned, or at once with `fail(error)`.
 */
export interface ParkedStream extends AsyncIterableIterator<never>, EndableStream {
  return(): Promise<IteratorResult<never>>
  /** Calls `listener` once when the stream ends, with its failure when it failed. */
  onEnded(listener: (failure?: StreamFailure) => void): void
}

/** The fan-out of one subscription, with the stream it parked once it followed its channels. */
export interface SocketFanout extends ChannelFanout {
  readonly stream: ParkedStream | undefined
}

const DONE: IteratorResult<never> = { done: true, value: undefined }

/**
 * Stands in for a subscription's event stream while the fan-out writes its frames; ending it
 * runs `onEnd` once. A class rather than closures: one lives per subscription for as long as
 * it runs, and one object with its methods on the prototype is a fraction of their size.
 */
class Parked implements ParkedStream {
  readonly #endListeners: Array<(failure?: StreamFailure) => void>
  #ended = false
  #failure: StreamFailure | undefined
  #waiting: { resolve(step: IteratorResult<never>): void; reject(error: unknown): void } | undefined

  constructor(onEnd: () => void) {
    this.#endListeners = [onEnd]
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  next(): Promise<IteratorResult<never>> {
    if (this.#failure) return Promise.reject(this.#failure.error)
    if (this.#ended) return Promise.resolve(DONE)
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  return(): Promise<IteratorResult<never>> {
    this.#end(undefined)
    return Promise.resolve(DONE)
  }

  onEnded(listener: (failure?: StreamFailure) => void): void {
    if (this.#ended) listener(this.#failure)
    else this.#endListeners.push(listener)
  }

  fail(error: unknown): void {
    this.#end({ error })
  }

  #end(failure: StreamFailure | undefined): void {
    if (this.#ended) return
    this.#ended = true
    this.#failure = failure
    const waiting = this.#waiting
    this.#waiting = undefined
    if (failure) waiting?.reject(failure.error)
    else waiting?.resolve(DONE)
    for (const listener of this.#endListeners) listener(failure)
  }
}

/** One subscription in its feed: writes its group's rendered payloads to its socket. */
class SocketMember implements FeedMember<RenderedBatch> {
  constructor(
    readonly group: FeedGroup<RenderedBatch>,
    private readonly sink: SocketSink,
    /** The frame up to the payload, with this subscription's id. */
    private readonly head: string,
    private readonly onFrames: (count: number) => void,
    private readonly stream: ParkedStream,
    private readonly check: (() => Promise<void>) | undefined,
  ) {}

  /** Without a check of its own, the subscription's access cannot change: nothing to do. */
  recheck(): Promise<void> {
    return this.check ? this.check() : Promise.resolve()
  }

  deliver(_batch: readonly DeliveredEvent[], rendered: RenderedBatch): void {
    if (!this.sink.isOpen()) return
    let frames = 0
    this.sink.batch(() => {
      for (const payload of rendered) {
        if (payload === null) continue
        this.sink.send(`${this.head}${payload}}`)
        frames += 1
      }
    })
    if (frames > 0) this.onFrames(frames)
  }

  drained(): Promise<void> | undefined {
    return this.sink.drained()
  }

  fail(error: unknown): void {
    this.stream.fail(error)
  }
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
  // A plain property set once followed (an accessor would put the object in dictionary mode).
  const fanout: { stream: ParkedStream | undefined } & ChannelFanout = {
    stream: undefined,
    async follow({ channels, from, filter, onClose, context, recheck }: FollowRequest) {
      const group = executions.group(channels, { ...operation, contextValue: context }, filter)
      const unfollow = onFollow?.(channels)
      let leave: (() => void) | undefined
      const stream = new Parked(() => {
        leave?.()
        group.release()
        unfollow?.()
        onClose()
      })
      const member = new SocketMember(group, sink, head, onFrames, stream, recheck)
      try {
        leave = await feeds.join({ channels, from }, member)
      } catch (error) {
        await stream.return()
        throw error
      }
      fanout.stream = stream
      return stream
    },
  }
  return fanout
}
