/** A token bucket: it holds up to `burst` tokens and refills at `perSecond`. */
export interface TokenBucket {
  /** Spends one token: 0 when there was one, else ms until there will be (nothing is spent). */
  take(): number
  /** Whether it has refilled to `burst`, i.e. it is the same as a fresh bucket. */
  full(): boolean
}

export interface TokenBucketOptions {
  /** Tokens added per second; 0 turns the bucket off (every take succeeds). */
  readonly perSecond: number
  /** Most tokens the bucket holds (at least 1): the largest burst after a quiet time. */
  readonly burst: number
  /** The clock in ms (default `performance.now`); tests pass their own. */
  readonly now?: () => number
}

/** Creates a full bucket. */
export function createTokenBucket({
  perSecond,
  burst,
  now = () => performance.now(),
}: TokenBucketOptions): TokenBucket {
  if (perSecond <= 0) return { take: () => 0, full: () => true }
  const capacity = Math.max(1, burst)
  let tokens = capacity
  let at = now()
  const refill = () => {
    const time = now()
    // A clock stepping back refills nothing rather than draining the bucket.
    tokens = Math.min(capacity, tokens + (Math.max(0, time - at) * perSecond) / 1_000)
    at = time
  }
  return {
    take() {
      refill()
      if (tokens < 1) return ((1 - tokens) * 1_000) / perSecond
      tokens -= 1
      return 0
    },
    full() {
      refill()
      return tokens >= capacity
    },
  }
}
