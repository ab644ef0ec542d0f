import type { GraphQLError } from 'graphql'
import type { AccessLookups } from './auth/channel-access.js'
import type { Viewer } from './auth/viewer.js'
import type { Database } from './db/database.js'
import type { Bus } from './events/bus.js'
import type { Publisher } from './events/publisher.js'
import type { Activity } from './ops/activity.js'
import type { Metrics } from './ops/metrics.js'
import type { RateMeter } from './ops/rate-meter.js'
import type { RecentProblems } from './ops/recent-problems.js'
import type { ConnectionRegistry } from './transport/connection-registry.js'

/** The long-lived parts every resolver may use; built once by `buildApp`. */
export interface Services {
  readonly db: Database
  readonly bus: Bus
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
}
