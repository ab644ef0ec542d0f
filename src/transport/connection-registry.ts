import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { isAsyncIterable } from 'graphql-yoga'
import type { Viewer } from '../auth/viewer.js'
import { closedByOperator } from '../errors.js'
import type { Bus } from '../events/bus.js'
import type { Role } from '../events/channels.js'
import type { OperationLabel } from '../ops/operation-label.js'
import { createRateMeter, type RateMeter } from '../ops/rate-meter.js'
import { endable } from './endable-stream.js'

/**
 * Close code of a connection an operator disconnected, with the reason after "Disconnected by
 * an operator: ". graphql-ws does not treat it as fatal, so its client reconnects after its
 * retry wait, taking a fresh token from `connectionParams`: that is what a disconnect after a
 * change of roles or scopes needs. 4401 would stop the client for good, but it says "your token
 * is invalid", and it would not keep anyone out (any client may reconnect with a valid token;
 * stopping a user is the identity provider's job). A client that must stay away checks the
 * code in its `shouldRetry`.
 */
export const OPERATOR_CLOSE_CODE = 4410

const MAX_CLOSE_REASON = 123 // bytes a close frame's reason may hold

/** A live subscription as the admin API shows it. */
export interface SubscriptionView {
  /** The id the client gave it (unique within its connection). */
  readonly id: string
  readonly connectionId: string
  readonly user: string
  readonly role: Role
  readonly operationName: string | null
  readonly rootField: string
  /** Channels it follows on the bus right now, e.g. `lot:42:parking`. */
  readonly channels: readonly string[]
  readonly startedAt: string
}

/** A live graphql-ws connection as the admin API shows it. */
export interface ConnectionView {
  readonly id: string
  readonly user: string
  readonly role: Role
  readonly scopes: readonly string[]
  /** The peer's address (the load balancer's, behind one). */
  readonly remoteAddress: string | null
  /** `X-Forwarded-For` as received: informative only, a client may forge it. */
  readonly forwardedFor: string | null
  readonly connectedAt: string
  readonly tokenExpiresAt: string | null
  readonly subscriptions: readonly SubscriptionView[]
}

/** Which connections (or subscriptions, by their connection) a listing keeps. */
export interface ViewerFilter {
  /** Exactly this `sub`. */
  readonly user?: string | undefined
  readonly role?: string | undefined
  /** Connections whose token carries this scope. */
  readonly scope?: string | undefined
  /** Case-insensitive part of the user, the connection id or an address. */
  readonly search?: string | undefined
}

export interface SubscriptionFilter extends ViewerFilter {
  /** Subscriptions following this channel. */
  readonly channel?: string | undefined
  readonly rootField?: string | undefined
}

/** `first` items after the cursor `after` (an `endCursor` of an earlier page). */
export interface PageRequest {
  readonly first: number
  readonly after?: number | undefined
}

export interface Page<T> {
  /** Items matching the filter, on every page. */
  readonly totalCount: number
  readonly nodes: readonly T[]
  /** Pass as `after` for the next page; null on an empty page. */
  readonly endCursor: number | null
  readonly hasNextPage: boolean
}

export interface ChannelCount {
  readonly channel: string
  readonly subscribers: number
}

export interface OperationCount extends OperationLabel {
  readonly subscriptions: number
}

/** What the transport tells when it accepts a connection. */
export interface OpenConnection {
  readonly viewer: Viewer
  readonly remoteAddress: string | null
  readonly forwardedFor: string | null
  /** Closes the socket with `code` and `reason` (already short enough for a close frame). */
  readonly close: (code: number, reason: string) => void
}

/** The transport's handle on one registered connection. */
export interface TrackedConnection {
  readonly id: string
  /** Starts tracking subscription `id` of this connection, before it executes. */
  subscribe(id: string, label: OperationLabel): TrackedSubscription
  /**
   * Hands over what executing subscription `id` returned. A stream comes back wrapped so that
   * an operator can end it with an error; anything else (a refusal) ends the tracking and
   * gives undefined.
   */
  started<T>(id: string, result: T): T | undefined
  /** The socket closed: forgets the connection and its subscriptions. */
  closed(): void
  /** The connection's token was replaced (same subject): listings show the new one. */
  refreshed(viewer: Viewer): void
}

/** The handle a subscription's resolvers see, through their context. */
export interface TrackedSubscription {
  /** `bus`, recording each channel subscribed through it as followed until it stops. */
  watch(bus: Bus): Bus
  /** Records `channels` as followed (by the fan-out) until the returned function is called. */
  follow(channels: readonly string[]): () => void
  /** Counts event messages written for this subscription. */
  delivered(count: number): void
}

/** Every live graphql-ws connection of this instance, with its subscriptions. */
export interface ConnectionRegistry {
  /** Names this instance, e.g. `web-1:4242`. */
  readonly instance: string
  /** Event messages the bus handed to the subscriptions of this instance. */
  readonly deliveries: Pick<RateMeter, 'perSecond' | 'total'>
  open(connection: OpenConnection): TrackedConnection
  connections(filter: ViewerFilter, page: PageRequest): Page<ConnectionView>
  subscriptions(filter: SubscriptionFilter, page: PageRequest): Page<SubscriptionView>
  /** Channels by subscribers, most first; `search` keeps names containing it. */
  channels(first: number, search?: string): { totalCount: number; nodes: ChannelCount[] }
  /** Subscriptions by operation (name and root field), most first. */
  operations(first: number): OperationCount[]
  /** Counts, and a revision that changes whenever a connection, subscription or channel does. */
  counts(): { connections: number; subscriptions: number; channels: number; revision: number }
  /** Closes connection `id` with `OPERATOR_CLOSE_CODE`; false when it is not (or no longer) here. */
  disconnect(id: string, reason: string): boolean
  /**
   * Closes every connection of `user`; resolves how many. Without `code`: 4410 and
   * "Disconnected by an operator: <reason>"; with one, that code and `reason` as given.
   */
  disconnectUser(user: string, reason: string, code?: number): number
  /** Ends every subscription following `channel` with a `CLOSED_BY_OPERATOR` error; how many. */
  closeChannel(channel: string, reason: string): number
}

export interface ConnectionRegistryOptions {
  /** Names this instance in listings (default `<hostname>:<pid>`). */
  readonly instance?: string
}

interface SubscriptionRecord {
  readonly key: number
  readonly id: string
  readonly connection: ConnectionRecord
  readonly label: OperationLabel
  readonly startedAt: string
  /** Channel → how many bus subscriptions of this subscription follow it. */
  readonly channels: Map<string, number>
  /** False once forgotten: it no longer shows and no longer counts. */
  live: boolean
  /** Ends the stream with an error; set once it started streaming. */
  end: ((error: Error) => void) | undefined
  /** An end asked for before the stream started. */
  pendingEnd: Error | undefined
}

interface ConnectionRecord extends OpenConnection {
  /** The current token's viewer (a refresh replaces it). */
  viewer: Viewer
  /** Registration order, and the cursor of listings. */
  readonly key: number
  readonly id: string
  readonly connectedAt: string
  /** By the client's subscription id. */
  readonly subscriptions: Map<string, SubscriptionRecord>
}

/** A stream that ends itself on request (the fan-out's), needing no `endable` wrapper. */
interface EndableStream {
  fail(error: unknown): void
  onEnded(listener: () => void): void
}

const isEndableStream = (value: unknown): value is EndableStream =>
  typeof (value as Partial<EndableStream>).fail === 'function' &&
  typeof (value as Partial<EndableStream>).onEnded === 'function'

/** `text` cut to fit a close frame, without splitting a character. */
function frameSafe(text: string): string {
  if (Buffer.byteLength(text) <= MAX_CLOSE_REASON) return text
  let out = ''
  for (const char of text) {
    if (Buffer.byteLength(`${out}${char}…`) > MAX_CLOSE_REASON) break
    out += char
  }
  return `${out}…`
}

/** Keeps the records `keep` accepts, `first` of them after `after`, in registration order. */
function paginate<R extends { readonly key: number }, V>(
  records: Iterable<R>,
  keep: (record: R) => boolean,
  { first, after = 0 }: PageRequest,
  view: (record: R) => V,
): Page<V> {
  let totalCount = 0
  let endCursor: number | null = null
  let hasNextPage = false
  const nodes: V[] = []
  for (const record of records) {
    if (!keep(record)) continue
    totalCount += 1
    if (record.key <= after) continue
    if (nodes.length < first) {
      nodes.push(view(record))
      endCursor = record.key
    } else {
      hasNextPage = true
    }
  }
  return { totalCount, nodes, endCursor, hasNextPage }
}

/** What the handles of connections and subscriptions ask of their registry. */
interface RegistryOps {
  readonly deliveries: RateMeter
  subscribe(connection: ConnectionRecord, id: string, label: OperationLabel): SubscriptionRecord
  started<T>(connection: ConnectionRecord, id: string, result: T): T | undefined
  forgetConnection(connection: ConnectionRecord): void
  refreshed(connection: ConnectionRecord, viewer: Viewer): void
  follow(record: SubscriptionRecord, channel: string): void
  unfollow(record: SubscriptionRecord, channel: string): void
}

// The handles are classes rather than objects of closures: one lives per connection and per
// subscription, and an object with its methods on the prototype is a fraction of their size.

class ConnectionHandle implements TrackedConnection {
  readonly id: string

  constructor(
    private readonly ops: RegistryOps,
    private readonly record: ConnectionRecord,
  ) {
    this.id = record.id
  }

  subscribe(id: string, label: OperationLabel): TrackedSubscription {
    return new SubscriptionHandle(this.ops, this.ops.subscribe(this.record, id, label))
  }

  started<T>(id: string, result: T): T | undefined {
    return this.ops.started(this.record, id, result)
  }

  closed(): void {
    this.ops.forgetConnection(this.record)
  }

  refreshed(viewer: Viewer): void {
    this.ops.refreshed(this.record, viewer)
  }
}

class SubscriptionHandle implements TrackedSubscription {
  constructor(
    private readonly ops: RegistryOps,
    private readonly record: SubscriptionRecord,
  ) {}

  watch(bus: Bus): Bus {
    const { ops, record } = this
    return {
      async subscribe(channel, listener) {
        const stop = await bus.subscribe(channel, (message) => {
          if (message.kind === 'event') ops.deliveries.mark()
          listener(message)
        })
        ops.follow(record, channel)
        let stopped = false
        return () => {
          if (stopped) return
          stopped = true
          ops.unfollow(record, channel)
          stop()
        }
      },
      publish: (channel, message) => bus.publish(channel, message),
      ping: () => bus.ping(),
      close: () => bus.close(),
    }
  }

  follow(channels: readonly string[]): () => void {
    const { ops, record } = this
    for (const channel of channels) ops.follow(record, channel)
    let followed = true
    return () => {
      if (!followed) return
      followed = false
      for (const channel of channels) ops.unfollow(record, channel)
    }
  }

  delivered(count: number): void {
    this.ops.deliveries.mark(count)
  }
}

/** Creates the registry of one instance; the graphql-ws transport feeds it. */
export function createConnectionRegistry({
  instance = `${hostname()}:${process.pid}`,
}: ConnectionRegistryOptions = {}): ConnectionRegistry {
  // Instances share nothing: a random tag keeps their connection ids apart.
  const tag = randomBytes(3).toString('hex')
  const connections = new Map<string, ConnectionRecord>()
  const subscriptions = new Map<number, SubscriptionRecord>()
  const followers = new Map<string, Set<SubscriptionRecord>>()
  const deliveries = createRateMeter()
  let connectionSeq = 0
  let subscriptionSeq = 0
  let revision = 0

  const follow = (record: SubscriptionRecord, channel: string) => {
    if (!record.live) return
    const count = record.channels.get(channel) ?? 0
    record.channels.set(channel, count + 1)
    if (count > 0) return
    const set = followers.get(channel) ?? new Set()
    followers.set(channel, set.add(record))
    revision += 1
  }
  const removeFollower = (record: SubscriptionRecord, channel: string) => {
    const set = followers.get(channel)
    set?.delete(record)
    if (set?.size === 0) followers.delete(channel)
    revision += 1
  }
  const unfollow = (record: SubscriptionRecord, channel: string) => {
    if (!record.live) return
    const count = record.channels.get(channel) ?? 0
    if (count > 1) return void record.channels.set(channel, count - 1)
    record.channels.delete(channel)
    removeFollower(record, channel)
  }
  /** Stops listing and counting `record`; the stream itself ends elsewhere. */
  const forget = (record: SubscriptionRecord) => {
    if (!record.live) return
    for (const channel of record.channels.keys()) removeFollower(record, channel)
    record.channels.clear()
    record.live = false
    subscriptions.delete(record.key)
    revision += 1
  }
  const forgetConnection = (record: ConnectionRecord) => {
    if (connections.get(record.id) !== record) return
    connections.delete(record.id)
    for (const subscription of record.subscriptions.values()) forget(subscription)
    record.subscriptions.clear()
    revision += 1
  }
  const disconnect = (
    record: ConnectionRecord,
    reason: string,
    code: number = OPERATOR_CLOSE_CODE,
  ) => {
    forgetConnection(record)
    record.close(code, frameSafe(reason))
  }
  const endSubscription = (record: SubscriptionRecord, error: Error) => {
    if (record.end) record.end(error)
    else record.pendingEnd = error
    forget(record)
  }

  const subscriptionView = (record: SubscriptionRecord): SubscriptionView => ({
    id: record.id,
    connectionId: record.connection.id,
    user: record.connection.viewer.sub,
    role: record.connection.viewer.role,
    operationName: record.label.operationName,
    rootField: record.label.rootField,
    channels: [...record.channels.keys()],
    startedAt: record.startedAt,
  })
  const connectionView = (record: ConnectionRecord): ConnectionView => ({
    id: record.id,
    user: record.viewer.sub,
    role: record.viewer.role,
    scopes: [...record.viewer.scopes],
    remoteAddress: record.remoteAddress,
    forwardedFor: record.forwardedFor,
    connectedAt: record.connectedAt,
    tokenExpiresAt:
      record.viewer.expiresAt === undefined
        ? null
        : new Date(record.viewer.expiresAt * 1000).toISOString(),
    subscriptions: [...record.subscriptions.values()]
      .filter((subscription) => subscription.live)
      .map(subscriptionView),
  })
  const matches = (record: ConnectionRecord, { user, role, scope, search }: ViewerFilter) => {
    const { viewer } = record
    if (user !== undefined && viewer.sub !== user) return false
    if (role !== undefined && viewer.role !== role) return false
    if (scope !== undefined && !viewer.scopes.has(scope)) return false
    if (search === undefined || search === '') return true
    const needle = search.toLowerCase()
    return [viewer.sub, record.id, record.remoteAddress, record.forwardedFor].some((value) =>
      value?.toLowerCase().includes(needle),
    )
  }

  const ops: RegistryOps = {
    deliveries,
    follow,
    unfollow,
    forgetConnection,
    subscribe(connection, id, label) {
      const previous = connection.subscriptions.get(id)
      if (previous) forget(previous)
      subscriptionSeq += 1
      const record: SubscriptionRecord = {
        key: subscriptionSeq,
        id,
        connection,
        label,
        startedAt: new Date().toISOString(),
        channels: new Map(),
        live: connections.get(connection.id) === connection,
        end: undefined,
        pendingEnd: undefined,
      }
      connection.subscriptions.set(id, record)
      if (record.live) {
        subscriptions.set(record.key, record)
        revision += 1
      }
      return record
    },
    started<T>(connection: ConnectionRecord, id: string, result: T): T | undefined {
      const record = connection.subscriptions.get(id)
      if (!record) return undefined
      const done = () => {
        forget(record)
        if (connection.subscriptions.get(id) === record) connection.subscriptions.delete(id)
      }
      if (!isAsyncIterable(result)) {
        done()
        return undefined
      }
      if (isEndableStream(result)) {
        result.onEnded(done)
        record.end = (error) => result.fail(error)
        if (record.pendingEnd) result.fail(record.pendingEnd)
        return result
      }
      const { iterator, end } = endable(result, done)
      record.end = end
      if (record.pendingEnd) end(record.pendingEnd)
      return iterator as unknown as T
    },
    refreshed(connection, viewer) {
      connection.viewer = viewer
      revision += 1
    },
  }

  return {
    instance,
    deliveries,
    open(open) {
      connectionSeq += 1
      const record: ConnectionRecord = {
        ...open,
        key: connectionSeq,
        id: `${tag}-${connectionSeq}`,
        connectedAt: new Date().toISOString(),
        subscriptions: new Map(),
      }
      connections.set(record.id, record)
      revision += 1
      return new ConnectionHandle(ops, record)
    },
    connections: (filter, page) =>
      paginate(connections.values(), (record) => matches(record, filter), page, connectionView),
    subscriptions: (filter, page) =>
      paginate(
        subscriptions.values(),
        (record) =>
          matches(record.connection, filter) &&
          (filter.channel === undefined || record.channels.has(filter.channel)) &&
          (filter.rootField === undefined || record.label.rootField === filter.rootField),
        page,
        subscriptionView,
      ),
    channels(first, search) {
      const needle = search?.toLowerCase()
      const all = [...followers]
        .filter(([channel]) => !needle || channel.toLowerCase().includes(needle))
        .map(([channel, set]) => ({ channel, subscribers: set.size }))
        .sort((a, b) => b.subscribers - a.subscribers || a.channel.localeCompare(b.channel))
      return { totalCount: all.length, nodes: all.slice(0, first) }
    },
    operations(first) {
      const counts = new Map<string, OperationCount>()
      for (const { label } of subscriptions.values()) {
        const key = `${label.operationName ?? ''}\u0000${label.rootField}`
        const count = counts.get(key)
        counts.set(key, { ...label, subscriptions: (count?.subscriptions ?? 0) + 1 })
      }
      return [...counts.values()]
        .sort((a, b) => b.subscriptions - a.subscriptions || a.rootField.localeCompare(b.rootField))
        .slice(0, first)
    },
    counts: () => ({
      connections: connections.size,
      subscriptions: subscriptions.size,
      channels: followers.size,
      revision,
    }),
    disconnect(id, reason) {
      const record = connections.get(id)
      if (record) disconnect(record, `Disconnected by an operator: ${reason}`)
      return record !== undefined
    },
    disconnectUser(user, reason, code) {
      const theirs = [...connections.values()].filter((record) => record.viewer.sub === user)
      const text = code === undefined ? `Disconnected by an operator: ${reason}` : reason
      for (const record of theirs) disconnect(record, text, code)
      return theirs.length
    },
    closeChannel(channel, reason) {
      const following = [...(followers.get(channel) ?? [])]
      const error = closedByOperator(reason)
      for (const record of following) endSubscription(record, error)
      return following.length
    },
  }
}
