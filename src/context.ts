import type { GraphQLError } from 'graphql'
import type { AccessLookups } from './auth/channel-access.js'
import type { Viewer } from './auth/viewer.js'
import type { Database } from './db/database.js'
import type { Bus } from './events/bus.js'
import type { Publisher } from './events/publisher.js'
import type { Activity } from './ops/activity.js'

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
