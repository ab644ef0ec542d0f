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

const UNLIMITED: TokenBucket = { take: () => 0, full: () => true }
const monotonicNow = () => performance.now()

/**
 * A class rather than closures: every WebSocket holds a bucket for its whole life, and one
 * object with its methods on the prototype is a fraction of their size.
 */
class Bucket implements TokenBucket {
  #tokens: number
  #at: number

  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
    private readonly now: () => number,
  ) {
    this.#tokens = capacity
    this.#at = now()
  }

  take(): number {
    this.#refill()
    if (this.#tokens < 1) return ((1 - this.#tokens) * 1_000) / this.perSecond
    this.#tokens -= 1
    return 0
  }

  full(): boolean {
    this.#refill()
    return this.#tokens >= this.capacity
  }

  #refill(): void {
    const time = this.now()
    // A clock stepping back refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, time - this.#at)
    this.#tokens = Math.min(this.capacity, this.#tokens + (elapsed * this.perSecond) / 1_000)
    this.#at = time
  }
}

/** Creates a full bucket. */
export function createTokenBucket({
  perSecond,
  burst,
  now = monotonicNow,
}: TokenBucketOptions): TokenBucket {
  if (perSecond <= 0) return UNLIMITED
  return new Bucket(perSecond, Math.max(1, burst), now)
}
