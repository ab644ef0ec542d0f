import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import {
  addHolder,
  assertValidClaim,
  type HeldSlots,
  type QuotaClaim,
  type Quotas,
  releaseOnce,
  removeHolder,
} from './quotas.js'

export interface RedisQuotasOptions {
  /**
   * Connection for the quota commands (the caller owns it and quits it after `close()`). Give
   * it `enableOfflineQueue: false` so that while Redis is down a claim fails open at once
   * instead of after `timeoutMs`.
   */
  readonly redis: Redis
  /** Prepended to every key on Redis (as `${prefix}quota:${name}`), so deployments and test
   * runs sharing one Redis never count together. */
  readonly prefix: string
  /**
   * How long a slot outlives the last heartbeat of the instance holding it, in ms (default
   * 30_000): the slots of an instance that crashed, or lost Redis, are free after this. The
   * instance refreshes its slots every third of it. Throws a `RangeError` below 3.
   */
  readonly ttlMs?: number
  /** How long a claim, or `close()`, waits for Redis before giving up, in ms (default 1_000). */
  readonly timeoutMs?: number
  /**
   * Called with each Redis failure: a claim that failed open, a release or heartbeat that did
   * not reach Redis (its slots then expire after `ttlMs`). By default failures are ignored.
   */
  readonly onError?: (err: unknown) => void
}

// Drops expired holders, then either admits the holder under every key or returns the index
// (from 1) of the first full key. Server time, so the instances' clocks never matter.
// KEYS: quota sets. ARGV: holder, ttl (ms), then the limit of each key (0 = unlimited).
const CLAIM_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local holder = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local limit = tonumber(ARGV[i + 2])
  if limit > 0 and not redis.call('ZSCORE', key, holder) and redis.call('ZCARD', key) >= limit then
    return i
  end
end
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, holder)
  redis.call('PEXPIRE', key, ttl)
end
return 0
`
const CLAIM_SHA = createHash('sha1').update(CLAIM_SCRIPT).digest('hex')

// Pushes the expiry of live holders to now + ttl, re-adding any that vanished (Redis restarted
// empty, or this instance was cut off for longer than the ttl): they are still connected.
// KEYS: quota sets. ARGV: ttl (ms), the number of holders listed for each key, then the
// holders, key after key.
const REFRESH_SCRIPT = `
local time = redis.call('TIME')
local ttl = tonumber(ARGV[1])
local deadline = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + ttl
local at = #KEYS + 2
for i, key in ipairs(KEYS) do
  local last = at + tonumber(ARGV[i + 1]) - 1
  local batch = {}
  for j = at, last do
    batch[#batch + 1] = deadline
    batch[#batch + 1] = ARGV[j]
    if #batch == 1000 or j == last then
      redis.call('ZADD', key, unpack(batch))
      batch = {}
    end
  end
  redis.call('PEXPIRE', key, ttl)
  at = last + 1
end
return 0
`

// Holders per refresh call: Redis runs nothing else while a script runs. Measured with 10,000
// subscribed connections (~30,000 holders): batches of 5,000 blocked Redis 10 to 28 ms per
// script, ~110 ms per heartbeat, and every event on the bus waited; 500 keep a script near
// 2 ms, and the calls go one after another so other commands run in between.
const REFRESH_BATCH = 500

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Arguments of REFRESH_SCRIPT calls covering every holder in `held`. */
function refreshCalls(held: ReadonlyMap<string, ReadonlySet<string>>, ttlMs: number) {
  const calls: Array<{ keys: string[]; args: Array<string | number> }> = []
  let keys: string[] = []
  let counts: number[] = []
  let holders: string[] = []
  const flush = () => {
    if (keys.length > 0) calls.push({ keys, args: [ttlMs, ...counts, ...holders] })
    keys = []
    counts = []
    holders = []
  }
  for (const [key, members] of held) {
    let count = 0
    for (const holder of members) {
      if (holders.length === REFRESH_BATCH) {
        if (count > 0) {
          keys.push(key)
          counts.push(count)
        }
        flush()
        count = 0
      }
      holders.push(holder)
      count++
    }
    if (count > 0) {
      keys.push(key)
      counts.push(count)
    }
  }
  flush()
  return calls
}

/**
 * Quotas counted across every instance sharing the Redis and `prefix`: one sorted set per key,
 * its members the holders, scored by when they expire. A claim is one script run (one round
 * trip), atomic across its keys. This instance refreshes the slots it holds every `ttlMs / 3`,
 * so a crashed instance's slots are freed after `ttlMs` instead of leaking.
 *
 * When Redis fails or does not answer within `timeoutMs`, a claim is granted (fails open) and
 * `onError` is told: refusing every connection during a Redis outage would turn it into an
 * outage of the gateway, while a quota briefly exceeded costs little. Such a claim is not
 * counted, and its release does nothing.
 */
export function createRedisQuotas({
  redis,
  prefix,
  ttlMs = 30_000,
  timeoutMs = 1_000,
  onError = () => {},
}: RedisQuotasOptions): Quotas {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 3) {
    throw new RangeError(`ttlMs must be an integer >= 3, got ${ttlMs}`)
  }
  // Redis key -> holders this instance claimed there, refreshed by the heartbeat.
  const held: HeldSlots = new Map()
  let closed = false
  let beating = false

  const keyOf = (name: string) => `${prefix}quota:${name}`

  const runClaim = async (keys: string[], args: Array<string | number>) => {
    try {
      return await redis.evalsha(CLAIM_SHA, keys.length, ...keys, ...args)
    } catch (error) {
      // Not cached yet (or Redis restarted): EVAL sends the body and caches it.
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
      return await redis.eval(CLAIM_SCRIPT, keys.length, ...keys, ...args)
    }
  }

  const heartbeat = async () => {
    if (beating || held.size === 0) return
    beating = true
    try {
      for (const call of refreshCalls(held, ttlMs)) {
        if (closed) return
        await redis.eval(REFRESH_SCRIPT, call.keys.length, ...call.keys, ...call.args)
      }
    } catch (error) {
      onError(error)
    } finally {
      beating = false
    }
  }
  const timer = setInterval(() => void heartbeat(), Math.floor(ttlMs / 3))
  timer.unref()

  return {
    async claim(quotaKeys, holder): Promise<QuotaClaim> {
      if (closed) throw new Error('quotas are closed')
      assertValidClaim(quotaKeys, holder)
      if (quotaKeys.length === 0) return { ok: true, release: () => {} }
      const keys = quotaKeys.map((key) => keyOf(key.name))
      let full: unknown
      try {
        const args = [holder, ttlMs, ...quotaKeys.map((key) => key.limit)]
        full = await withTimeout(runClaim(keys, args), timeoutMs)
      } catch (error) {
        // Should a timed-out claim still land, nothing refreshes it: it expires after ttlMs.
        onError(error)
        return { ok: true, release: () => {} }
      }
      const fullKey = typeof full === 'number' ? quotaKeys[full - 1] : undefined
      if (fullKey) return { ok: false, key: fullKey }
      const names = [...new Set(keys)]
      if (closed) {
        // close() ran while this claim was in flight and did not see it.
        Promise.all(names.map((key) => redis.zrem(key, holder))).catch(onError)
        throw new Error('quotas are closed')
      }
      addHolder(held, names, holder)
      const release = releaseOnce(() => {
        if (closed) return
        removeHolder(held, names, holder)
        // A failed ZREM leaves the slot to expire after ttlMs, as nothing refreshes it now.
        Promise.all(names.map((key) => redis.zrem(key, holder))).catch(onError)
      })
      return { ok: true, release }
    },

    async close() {
      if (closed) return
      closed = true
      clearInterval(timer)
      const removals: Array<Promise<number>> = []
      for (const [key, holders] of held) {
        const members = [...holders]
        for (let at = 0; at < members.length; at += REFRESH_BATCH) {
          removals.push(redis.zrem(key, ...members.slice(at, at + REFRESH_BATCH)))
        }
      }
      held.clear()
      await withTimeout(Promise.all(removals), timeoutMs).catch(onError)
    },
  }
}
