import type { Bus } from '../events/bus.js'

const BUCKET = 1_000 // ms per bucket

/** Counts occurrences and tells their recent rate. */
export interface RateMeter {
  /** Counts `count` occurrences now (default 1). */
  mark(count?: number): void
  /** Occurrences per second over the last `windowMs`, the current partial second included. */
  perSecond(): number
  /** Occurrences since the meter was made. */
  readonly total: number
}

export interface RateMeterOptions {
  /** How far back `perSecond()` looks, in ms (default 5000, rounded to whole seconds). */
  readonly windowMs?: number
  /** The clock, in ms; tests pass a fake one. Default `Date.now`. */
  readonly now?: () => number
}

/**
 * A rate meter over one-second buckets: memory is one number per second of the window,
 * whatever the rate. A single occurrence shows as `1 / window` per second for the window.
 */
export function createRateMeter({
  windowMs = 5_000,
  now = Date.now,
}: RateMeterOptions = {}): RateMeter {
  const size = Math.max(1, Math.round(windowMs / BUCKET))
  const buckets = new Array<number>(size).fill(0)
  let current = Math.floor(now() / BUCKET)
  let total = 0
  // Empties the buckets of the seconds that passed since the last call.
  const advance = () => {
    const second = Math.floor(now() / BUCKET)
    for (let s = current + 1; s <= Math.min(second, current + size); s += 1) buckets[s % size] = 0
    current = Math.max(current, second)
  }
  return {
    mark(count = 1) {
      advance()
      buckets[current % size] = (buckets[current % size] ?? 0) + count
      total += count
    },
    perSecond() {
      advance()
      return buckets.reduce((sum, value) => sum + value, 0) / size
    },
    get total() {
      return total
    },
  }
}

/** `bus`, marking `meter` once for each logged event published through it. */
export function meterPublishedEvents(bus: Bus, meter: RateMeter): Bus {
  return {
    publish(channel, message) {
      if (message.kind === 'event') meter.mark()
      return bus.publish(channel, message)
    },
    subscribe: (channel, listener) => bus.subscribe(channel, listener),
    ping: () => bus.ping(),
    close: () => bus.close(),
  }
}
