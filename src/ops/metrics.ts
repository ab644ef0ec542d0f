import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client'
import type { Queryable } from '../db/database.js'

/** The client transports whose connections and frames are counted. */
export type Transport = 'ws' | 'sse'

const TRANSPORTS: readonly Transport[] = ['ws', 'sse']
const PROBE_TIMEOUT = 1_000 // ms; a dependency slower than this on a scrape counts as down
// Seconds from publish to send: sub-millisecond in process, tens of ms across Redis, seconds
// or more for events replayed to a client resuming from an old cursor.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** What Switchboard measures, registered in one registry that `/metrics` serves. */
export interface Metrics {
  readonly registry: Registry
  /** Subscriptions streaming right now, by root field (`parkingUpdated`, ...). */
  readonly subscriptions: Gauge<'field'>
  /** Events committed to the log, by type (`parking.spaceStateChanged`, ...). */
  readonly eventsPublished: Counter<'type'>
  /** Subscribers dropped for not keeping up (set by the slow-consumer limits). */
  readonly slowConsumersDropped: Counter<'transport'>
  /**
   * Refusals: `UNAUTHENTICATED` when a WebSocket is refused at `connection_init` or an HTTP/SSE
   * request carries a token that fails verification; `FORBIDDEN` when a subscription or query
   * asks for a channel the viewer may not read.
   */
  readonly authRefusals: Counter<'code'>
  /** Errors answered to publish mutations, by `extensions.code`. */
  readonly publishErrors: Counter<'code'>
  /** Counts a connection of `transport` as open until the returned function is called (once). */
  connectionOpened(transport: Transport): () => void
  /**
   * Notes that the event stream of `operation` (its GraphQL context, one per subscription)
   * handed an event published at `publishedAt` to the executor; the next `frameSent` for
   * that operation measures the event's publish→send latency.
   */
  eventStreamed(operation: object, publishedAt: string): void
  /** Counts a subscription message handed to the socket or stream of `operation`. */
  frameSent(transport: Transport, operation: object): void
  /** Counts `count` messages the fan-out wrote (added to the counter at the next scrape). */
  framesSent(transport: Transport, count: number): void
  /**
   * Notes that the fan-out rendered an event published at `publishedAt` for a group of
   * subscribers: its publish→send latency, once per event and group, not per socket.
   */
  eventRendered(transport: Transport, publishedAt: string): void
  /** Where the fan-out gauges read their values (set once the transport exists). */
  observeFanout(sizes: FanoutSizes): void
}

/** Sizes of the fan-out, read at each scrape. */
export interface FanoutSizes {
  feeds(): number
  groups(): number
}

export interface MetricsOptions {
  /** Where the metrics are registered; a fresh `Registry` per instance, never the global one. */
  readonly registry: Registry
  /** The database: `switchboard_database_up` pings it and the event-log gauges query it. */
  readonly db: Queryable & { ping(): Promise<void> }
  /** The bus: `switchboard_bus_up` pings it. */
  readonly bus: { ping(): Promise<void> }
  /** How long a scrape waits for each dependency before reporting it down (default 1000 ms). */
  readonly probeTimeoutMs?: number
}

/** Resolves with `promise`, or rejects once `ms` passed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

interface LogStats {
  events: number
  channels: number
  newestAgeSeconds: number
}

// Each channel keeps its gap-free seqs above pruned_through, so this sum is the number of rows
// in `events` without scanning them; the newest event comes from the published_at index.
const LOG_STATS_SQL = `select count(*) as channels,
    coalesce(sum(last_seq - pruned_through), 0) as events,
    extract(epoch from now() - (select max(published_at) from events)) as newest_age
  from channels`

/**
 * Registers Switchboard's metrics and Node's default process metrics in `registry`. Gauges of
 * dependencies and of the event log are read on each scrape: a dependency that does not
 * answer within the probe timeout reads as down (0), and the log gauges read NaN.
 */
export function createMetrics({
  registry,
  db,
  bus,
  probeTimeoutMs = PROBE_TIMEOUT,
}: MetricsOptions): Metrics {
  const registers = [registry]
  collectDefaultMetrics({ register: registry })

  const connections = new Gauge({
    name: 'switchboard_connections',
    help: 'Open client connections: WebSockets, and SSE subscription streams',
    labelNames: ['transport'] as const,
    registers,
  })
  // The fan-out counts frames in plain numbers (a labelled increment per socket would cost as
  // much as the write); they join the counter when it is scraped.
  const unscrapedFrames: Record<Transport, number> = { ws: 0, sse: 0 }
  const messagesDelivered = new Counter({
    name: 'switchboard_messages_delivered_total',
    help: 'Subscription messages handed to a socket or stream',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      for (const transport of TRANSPORTS) {
        if (unscrapedFrames[transport] === 0) continue
        this.inc({ transport }, unscrapedFrames[transport])
        unscrapedFrames[transport] = 0
      }
    },
  })
  const deliveryLatency = new Histogram({
    name: 'switchboard_delivery_latency_seconds',
    help: "Seconds from an event's publishedAt to its message being handed to a socket or stream",
    labelNames: ['transport'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const slowConsumersDropped = new Counter({
    name: 'switchboard_slow_consumers_dropped_total',
    help: 'Subscribers dropped for not reading their messages fast enough',
    labelNames: ['transport'] as const,
    registers,
  })
  let fanoutSizes: FanoutSizes = { feeds: () => 0, groups: () => 0 }
  new Gauge({
    name: 'switchboard_fanout_feeds',
    help: 'Shared channel feeds open (one bus subscription per channel set, not per subscriber)',
    registers,
    collect() {
      this.set(fanoutSizes.feeds())
    },
  })
  new Gauge({
    name: 'switchboard_fanout_groups',
    help: 'Shared executions: subscriber groups with one execution and one payload per event',
    registers,
    collect() {
      this.set(fanoutSizes.groups())
    },
  })
  for (const transport of TRANSPORTS) {
    connections.set({ transport }, 0)
    messagesDelivered.inc({ transport }, 0)
    slowConsumersDropped.inc({ transport }, 0)
  }
  const authRefusals = new Counter({
    name: 'switchboard_auth_refusals_total',
    help: 'Tokens refused at connect (UNAUTHENTICATED) and reads of a channel refused (FORBIDDEN)',
    labelNames: ['code'] as const,
    registers,
  })
  for (const code of ['UNAUTHENTICATED', 'FORBIDDEN']) authRefusals.inc({ code }, 0)

  const probe = (check: () => Promise<void>) =>
    within(check(), probeTimeoutMs).then(
      () => 1,
      () => 0,
    )
  new Gauge({
    name: 'switchboard_database_up',
    help: 'Whether the database answered a ping on this scrape (1) or not (0)',
    registers,
    async collect() {
      this.set(await probe(() => db.ping()))
    },
  })
  new Gauge({
    name: 'switchboard_bus_up',
    help: 'Whether the bus answered a ping on this scrape (1) or not (0)',
    registers,
    async collect() {
      this.set(await probe(() => bus.ping()))
    },
  })

  // The three log gauges are collected concurrently on a scrape; they share one query.
  let reading: Promise<LogStats | undefined> | undefined
  const readLogStats = () => {
    reading ??= within(
      db.query<{ channels: unknown; events: unknown; newest_age: unknown }>(LOG_STATS_SQL),
      probeTimeoutMs,
    )
      .then(([row]) => ({
        events: Number(row?.events ?? 0),
        channels: Number(row?.channels ?? 0),
        // No event yet: there is no newest event to be old.
        newestAgeSeconds: row?.newest_age == null ? Number.NaN : Number(row.newest_age),
      }))
      .catch(() => undefined)
      .finally(() => {
        reading = undefined
      })
    return reading
  }
  const logGauge = (name: string, help: string, pick: (stats: LogStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const stats = await readLogStats()
        this.set(stats ? pick(stats) : Number.NaN)
      },
    })
  logGauge('switchboard_event_log_events', 'Events kept in the log', (stats) => stats.events)
  logGauge('switchboard_event_log_channels', 'Channels in the log', (stats) => stats.channels)
  logGauge(
    'switchboard_event_log_newest_event_age_seconds',
    'Seconds since the newest event in the log was published (NaN while the log is empty)',
    (stats) => stats.newestAgeSeconds,
  )

  // The publishedAt of the event each subscription's stream handed out last, until it is sent.
  const streamed = new WeakMap<object, string>()
  const observeLatency = (transport: Transport, publishedAt: string) => {
    // Clocks of two hosts (PostgreSQL's and ours) may disagree by a little; never negative.
    const seconds = Math.max(0, (Date.now() - Date.parse(publishedAt)) / 1000)
    deliveryLatency.observe({ transport }, seconds)
  }
  return {
    registry,
    subscriptions: new Gauge({
      name: 'switchboard_subscriptions',
      help: 'Subscriptions streaming right now, by root field',
      labelNames: ['field'] as const,
      registers,
    }),
    eventsPublished: new Counter({
      name: 'switchboard_events_published_total',
      help: 'Events committed to the log, by type',
      labelNames: ['type'] as const,
      registers,
    }),
    slowConsumersDropped,
    authRefusals,
    publishErrors: new Counter({
      name: 'switchboard_publish_errors_total',
      help: 'Errors answered to publish mutations, by extensions.code',
      labelNames: ['code'] as const,
      registers,
    }),
    connectionOpened(transport) {
      connections.inc({ transport })
      let open = true
      return () => {
        if (!open) return
        open = false
        connections.dec({ transport })
      }
    },
    eventStreamed(operation, publishedAt) {
      streamed.set(operation, publishedAt)
    },
    framesSent(transport, count) {
      unscrapedFrames[transport] += count
    },
    observeFanout(sizes) {
      fanoutSizes = sizes
    },
    eventRendered(transport, publishedAt) {
      observeLatency(transport, publishedAt)
    },
    frameSent(transport, operation) {
      messagesDelivered.inc({ transport })
      const publishedAt = streamed.get(operation)
      if (publishedAt === undefined) return
      streamed.delete(operation)
      observeLatency(transport, publishedAt)
    },
  }
}
