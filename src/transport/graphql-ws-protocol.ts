import { GraphQLError, type GraphQLFormattedError } from 'graphql'
import {
  CloseCode,
  type ExecutionResult,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  MessageType,
  parseMessage,
  type SubscribePayload,
} from 'graphql-ws'

/** A stream whose frames someone else writes (the fan-out): the protocol only sees it end. */
export interface DetachedStream {
  /** Calls `listener` once when the stream ends, with its failure when it failed. */
  onEnded(listener: (failure?: { readonly error: unknown }) => void): void
  /** Ends the stream (the client completed it or the socket closed). */
  return(): unknown
}

/** How a started operation produces its messages. */
export type Running =
  /** One result: `next`, then `complete` (queries, mutations, refused subscriptions). */
  | { readonly kind: 'result'; readonly result: ExecutionResult }
  /** Results sent as they come, then `complete`; a failure becomes an `error` message. */
  | { readonly kind: 'stream'; readonly stream: AsyncIterable<ExecutionResult> }
  /** Frames written elsewhere; a failure becomes an `error` message. */
  | { readonly kind: 'detached'; readonly stream: DetachedStream }

/** What `start` gives back: how the operation runs and what the application keeps with it. */
export interface Started<O> {
  readonly running: Running
  readonly data: O
}

/** What one socket's protocol needs of the socket. */
export interface ProtocolSocket {
  /** The subprotocol the handshake agreed on. */
  readonly protocol: string
  send(frame: string): void
  close(code: number, reason: string): void
}

/**
 * The application's side of graphql-transport-ws: Switchboard's auth, execution and
 * bookkeeping. `C` is what the application keeps per connection, `O` per operation.
 */
export interface ProtocolHandlers<C, O> {
  /**
   * `connection_init`: true accepts (`connection_ack` follows); false refuses (the socket
   * closes with 4403 unless the handler already closed it with a code of its own).
   */
  connect(
    session: ProtocolSession<C, O>,
    params: Record<string, unknown> | undefined,
  ): Promise<boolean>
  /** `subscribe`: starts the operation, or the errors that refuse it (sent as `error`). */
  start(
    session: ProtocolSession<C, O>,
    id: string,
    payload: SubscribePayload,
  ): Promise<Started<O> | readonly GraphQLError[]>
  /** What the client sees of errors ending operation `id` (masking). */
  formatErrors(
    session: ProtocolSession<C, O>,
    id: string,
    errors: readonly GraphQLError[],
  ): GraphQLFormattedError[]
  /** A result of operation `id` went out as `next` (not counted for detached streams). */
  sentNext(session: ProtocolSession<C, O>, id: string): void
  /** Operation `id` ended however it ended; `data` is what `start` gave, if it got that far. */
  ended(session: ProtocolSession<C, O>, id: string, data: O | undefined): void
  /** The socket closed; every operation has ended before this is called. */
  closed(session: ProtocolSession<C, O>, code: number, reason: string): void
  /** A handler threw: the socket closes with 4500 after this. */
  failed(session: ProtocolSession<C, O>, error: unknown): void
}

/** A client message about operation `id` that waits for the id's previous operation to end. */
type HeldMessage =
  | { readonly type: 'subscribe'; readonly payload: SubscribePayload }
  | { readonly type: 'complete' }

/**
 * One operation of a session. A class rather than closures: one lives per subscription for as
 * long as it runs, and one object with its methods on the prototype is a fraction of their size.
 */
class Operation<O> {
  /** Set once `start` resolved. */
  data: O | undefined
  /** The client completed it, or the socket closed: nothing more is sent for it. */
  cancelled = false
  /** `start` has not resolved yet. */
  starting = true
  /** `ended` was called. */
  over = false
  /** How to stop it once started (a stream's iterator or a detached stream). */
  stopper: { return?(): unknown } | undefined
  /** Messages for the next operation with this id, waiting until this one has ended. */
  held: HeldMessage[] | undefined

  constructor(readonly id: string) {}

  /** Stops what runs; safe to call more than once. */
  stop(): void {
    const stopper = this.stopper
    this.stopper = undefined
    try {
      const returned = stopper?.return?.()
      if (returned instanceof Promise) returned.catch(() => {})
    } catch {
      // an iterator that fails to stop has nothing more to say
    }
  }
}

const ACK = JSON.stringify({ type: MessageType.ConnectionAck })
const PONG = JSON.stringify({ type: MessageType.Pong })

/**
 * graphql-transport-ws on one socket, the server's side: the same messages, close codes and
 * ordering as graphql-ws's own server, without its per-socket closures and without a suspended
 * loop per subscription (a detached stream is only watched for its end), since idle
 * connections and their subscriptions are most of what an instance holds. Also keeps a
 * client's messages about one id in a safe order: a `complete` that arrives while its
 * operation is still being set up stops it as soon as it is, and a `subscribe` that reuses the
 * id of an operation the client completed waits until that one has fully ended.
 */
export class ProtocolSession<C, O> {
  #acknowledged = false
  #initReceived = false
  #initTimer: NodeJS.Timeout | undefined
  /** Operations by id, made on the first subscribe. */
  #operations: Map<string, Operation<O>> | undefined

  constructor(
    readonly socket: ProtocolSocket,
    private readonly handlers: ProtocolHandlers<C, O>,
    /** What the application keeps for this connection. */
    readonly connection: C,
    initTimeoutMs: number,
  ) {
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) {
      socket.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable')
      return
    }
    if (initTimeoutMs > 0 && Number.isFinite(initTimeoutMs)) {
      this.#initTimer = setTimeout(() => {
        this.#initTimer = undefined
        socket.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout')
      }, initTimeoutMs)
    }
  }

  /** Operations started and not yet ended. */
  operationCount(): number {
    return this.#operations?.size ?? 0
  }

  /** What `start` gave for operation `id`, while it runs. */
  dataOf(id: string): O | undefined {
    return this.#operations?.get(id)?.data
  }

  /** Handles one text message from the client. */
  receive(text: string): void {
    let message: ReturnType<typeof parseMessage>
    try {
      message = parseMessage(text)
    } catch {
      this.socket.close(CloseCode.BadRequest, 'Invalid message received')
      return
    }
    switch (message.type) {
      case MessageType.ConnectionInit:
        if (this.#initReceived) {
          this.socket.close(
            CloseCode.TooManyInitialisationRequests,
            'Too many initialisation requests',
          )
          return
        }
        this.#initReceived = true
        clearTimeout(this.#initTimer)
        this.#initTimer = undefined
        this.#guard(this.#connect(message.payload))
        return
      case MessageType.Ping:
        this.socket.send(
          message.payload
            ? JSON.stringify({ type: MessageType.Pong, payload: message.payload })
            : PONG,
        )
        return
      case MessageType.Pong:
        return
      case MessageType.Subscribe:
        if (!this.#acknowledged) {
          this.socket.close(CloseCode.Unauthorized, 'Unauthorized')
          return
        }
        this.#subscribe(message.id, message.payload)
        return
      case MessageType.Complete:
        this.#complete(message.id)
        return
      default:
        // A message only a server sends.
        this.socket.close(CloseCode.BadRequest, 'Invalid message received')
    }
  }

  /** The socket closed: stops every operation, then tells the application. */
  closed(code: number, reason: string): void {
    clearTimeout(this.#initTimer)
    this.#initTimer = undefined
    const operations = this.#operations
    this.#operations = undefined
    for (const operation of operations?.values() ?? []) {
      operation.cancelled = true
      operation.held = undefined
      // One still starting ends once `start` resolves, with what it gave.
      if (operation.starting) continue
      operation.stop()
      this.#end(operation)
    }
    this.handlers.closed(this, code, reason)
  }

  async #connect(params: Record<string, unknown> | undefined): Promise<void> {
    const accepted = await this.handlers.connect(this, params)
    if (!accepted) {
      this.socket.close(CloseCode.Forbidden, 'Forbidden')
      return
    }
    this.#acknowledged = true
    this.socket.send(ACK)
  }

  #subscribe(id: string, payload: SubscribePayload): void {
    this.#operations ??= new Map()
    const previous = this.#operations.get(id)
    if (previous) {
      if (previous.cancelled) {
        previous.held ??= []
        previous.held.push({ type: 'subscribe', payload })
        return
      }
      this.socket.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`)
      return
    }
    const operation = new Operation<O>(id)
    this.#operations.set(id, operation)
    this.#guard(this.#run(operation, payload))
  }

  #complete(id: string): void {
    const operation = this.#operations?.get(id)
    if (!operation) return
    if (operation.cancelled) {
      // Completes the subscribe held behind it, if any.
      operation.held?.push({ type: 'complete' })
      return
    }
    operation.cancelled = true
    operation.stop()
  }

  async #run(operation: Operation<O>, payload: SubscribePayload): Promise<void> {
    const { id } = operation
    let started: Started<O> | readonly GraphQLError[]
    try {
      started = await this.handlers.start(this, id, payload)
    } catch (error) {
      operation.starting = false
      this.#end(operation)
      throw error
    }
    operation.starting = false
    if (isRefusal(started)) {
      this.#sendErrors(operation, started)
      this.#end(operation)
      return
    }
    operation.data = started.data
    const { running } = started
    if (running.kind === 'result') {
      this.#sendNext(operation, running.result)
      this.#finish(operation)
      return
    }
    if (running.kind === 'detached') {
      operation.stopper = running.stream
      running.stream.onEnded((failure) => {
        if (failure) this.#sendErrors(operation, [asGraphQLError(failure.error)])
        else this.#sendComplete(operation)
        this.#end(operation)
      })
      // Completed by the client, or the socket closed, while it was being set up.
      if (operation.cancelled) operation.stop()
      return
    }
    const iterator = running.stream[Symbol.asyncIterator]()
    operation.stopper = iterator
    if (operation.cancelled) operation.stop()
    try {
      while (!operation.cancelled) {
        const step = await iterator.next()
        if (step.done) break
        this.#sendNext(operation, step.value)
      }
    } catch (error) {
      this.#sendErrors(operation, [asGraphQLError(error)])
      this.#end(operation)
      return
    }
    this.#finish(operation)
  }

  #sendNext(operation: Operation<O>, result: ExecutionResult): void {
    if (operation.cancelled) return
    const { errors, ...rest } = result
    const payload = errors
      ? { ...rest, errors: errors.map((error) => (error as GraphQLError).toJSON()) }
      : rest
    this.socket.send(JSON.stringify({ id: operation.id, type: MessageType.Next, payload }))
    this.handlers.sentNext(this, operation.id)
  }

  #sendErrors(operation: Operation<O>, errors: readonly GraphQLError[]): void {
    if (operation.cancelled) return
    const payload = this.handlers.formatErrors(this, operation.id, errors)
    this.socket.send(JSON.stringify({ id: operation.id, type: MessageType.Error, payload }))
  }

  #sendComplete(operation: Operation<O>): void {
    if (operation.cancelled) return
    this.socket.send(JSON.stringify({ id: operation.id, type: MessageType.Complete }))
  }

  /** Ran to its end: `complete` unless the client completed it, then forgotten. */
  #finish(operation: Operation<O>): void {
    this.#sendComplete(operation)
    this.#end(operation)
  }

  /** Forgets `operation` (once) and lets the messages held behind it through. */
  #end(operation: Operation<O>): void {
    if (operation.over) return
    operation.over = true
    operation.stopper = undefined
    if (this.#operations?.get(operation.id) === operation) this.#operations.delete(operation.id)
    this.handlers.ended(this, operation.id, operation.data)
    const held = operation.held
    operation.held = undefined
    for (const message of held ?? []) {
      if (message.type === 'subscribe') this.#subscribe(operation.id, message.payload)
      else this.#complete(operation.id)
    }
  }

  /** A handler that throws closes the socket with 4500 (graphql-ws's server does the same). */
  #guard(work: Promise<void>): void {
    work.catch((error: unknown) => {
      this.handlers.failed(this, error)
      this.socket.close(CloseCode.InternalServerError, 'Internal server error')
    })
  }
}

/** Whether `start` (or a step of it) refused the operation with errors. */
export const isRefusal = (value: unknown): value is readonly GraphQLError[] => Array.isArray(value)

/** An error that ended a stream, as graphql-ws's server reports it. */
function asGraphQLError(error: unknown): GraphQLError {
  const originalError = error instanceof Error ? error : new Error(String(error))
  return new GraphQLError(originalError.message, { originalError })
}
