import type { GraphQLError } from 'graphql'
import type { AccessLookups } from './auth/channel-access.js'
import type { Revocations } from './auth/revocations.js'
import type { Viewer } from './auth/viewer.js'
import type { Database } from './db/database.js'
import type { Bus } from './events/bus.js'
import type { FeedHub } from './events/channel-feed.js'
import type { Positions } from './events/cursor.js'
import type { PublishRateLimit } from './events/publish-rate-limit.js'
import type { Publisher } from './events/publisher.js'
import type { StoredEvent } from './events/stored-event.js'
import type { Activity } from './ops/activity.js'
import type { Metrics } from './ops/metrics.js'
import type { RateMeter } from './ops/rate-meter.js'
import type { RecentProblems } from './ops/recent-problems.js'
import type { ConnectionRegistry } from './transport/connection-registry.js'

/** The long-lived parts every resolver may use; built once by `buildApp`. */
export interface Services {
  readonly db: Database
  readonly bus: Bus
  /** Revoked token subjects (admin API `revokeUserTokens`), shared by every instance. */
  readonly revocations: Revocations
  /** Shared live feeds of channels: one bus subscription per channel set, not per subscriber. */
  readonly feeds: FeedHub
  readonly publisher: Publisher
  readonly lookups: AccessLookups
  /** Minimum spacing of coalesced stats messages, in ms. */
  readonly statsIntervalMs: number
  /** Live stream counts for /health and metrics. */
  readonly activity: Activity
  /** Counters and gauges served at `/metrics`. */
  readonly metrics: Metrics
  /** This instance's live graphql-ws connections and subscriptions (admin API). */
  readonly connections: ConnectionRegistry
  /** This instance's recent errors and refusals (admin API). */
  readonly problems: RecentProblems
  /** Events published through this instance (admin API). */
  readonly publishedEvents: RateMeter
  /** The publish rate per token subject (`PUBLISH_RATE_PER_SECOND`), checked by `publisherOf`. */
  readonly publishRate: PublishRateLimit
}

/** Per request (HTTP, SSE) or per connection (WebSocket) GraphQL context. */
export interface Context {
  /** The verified token's viewer; null when no usable token came with the request. */
  readonly viewer: Viewer | null
  /** Why the token was refused, reported when a field needs a viewer. */
  readonly authRefusal: GraphQLError | undefined
  /** SSE `Last-Event-ID`: a cursor the browser resumes from after reconnecting. */
  readonly lastEventId: string | undefined
  readonly services: Services
  /**
   * Set by a transport that writes subscription events itself (graphql-ws): a subscription
   * hands it the channels to follow instead of streaming them through GraphQL's executor.
   */
  readonly fanout?: ChannelFanout | undefined
  /** The WebSocket connection the operation runs on (graphql-ws), e.g. to refresh its token. */
  readonly connection?: ConnectionHandle | undefined
}

/** What an operation may do to the WebSocket connection it runs on. */
export interface ConnectionHandle {
  /**
   * Replaces the connection's token with `token` (verified, same `sub`): the expiry moves and
   * running subscriptions go on untouched. Rejects with `UNAUTHENTICATED` for a bad token and
   * `FORBIDDEN` for one of another subject.
   */
  refreshToken(token: string): Promise<Viewer>
}

/** Channels a subscription follows, already authorized, and from where. */
export interface FollowRequest {
  readonly channels: readonly string[]
  readonly from: Positions | undefined
  /** Delivers only the events it accepts; skipped ones still move the cursor. */
  readonly filter: ((event: StoredEvent) => boolean) | undefined
  /** Called once when the subscription ends, however it ends. */
  readonly onClose: () => void
  /** The subscription's context; shared executions of its group run with it. */
  readonly context: Context
  /** Rejects when the subscriber may no longer read the channels (access changed). */
  readonly recheck: () => Promise<void>
}

/** A transport's delivery of followed channels (see `Context.fanout`). */
export interface ChannelFanout {
  /**
   * Joins the channels' feed; resolves, once the subscription is live, with a stream that
   * yields nothing (the transport writes the events) and ends when the subscription does.
   * Rejects with `BAD_CURSOR`/`CURSOR_EXPIRED` for an unusable `from`.
   */
  follow(request: FollowRequest): Promise<AsyncIterableIterator<never>>
}
