import type { Viewer } from '../auth/viewer.js'
import { createTokenBucket, type TokenBucket } from '../ops/token-bucket.js'

/** Decides whether a token subject may publish now. */
export interface PublishRateLimit {
  /**
   * Spends one publish of the allowance of `viewer.sub`. Returns 0 when the publish may go
   * ahead, else how many ms until it would be allowed (nothing is spent then).
   */
  take(viewer: Viewer): number
}

export interface PublishRateLimitOptions {
  /** Sustained publishes per second per subject; 0 turns the limit off (`take` always 0). */
  readonly perSecond: number
  /** Publishes a subject may make at once, the bucket's size (at least 1). */
  readonly burst: number
  /**
   * Publishers the limit does not apply to (default none), e.g. the built-in NOTIFY ingester,
   * whose rows are already committed and must not be dropped.
   */
  readonly exempt?: (viewer: Viewer) => boolean
  /** The clock, in ms (default `Date.now`); tests pass their own. */
  readonly now?: () => number
}

/**
 * A token bucket per subject: it holds up to `burst` publishes and refills at `perSecond`.
 * Buckets that have refilled completely are forgotten (a full bucket is the same as none), so
 * memory follows the subjects publishing right now, not every subject ever seen.
 */
export function createPublishRateLimit({
  perSecond,
  burst,
  exempt = () => false,
  now = Date.now,
}: PublishRateLimitOptions): PublishRateLimit {
  if (perSecond <= 0) return { take: () => 0 }
  const refillMs = (Math.max(1, burst) / perSecond) * 1_000 // ms for an empty bucket to fill up
  const buckets = new Map<string, TokenBucket>()
  let sweptAt = now()

  return {
    take(viewer) {
      if (exempt(viewer)) return 0
      const time = now()
      if (time - sweptAt >= refillMs) {
        sweptAt = time
        for (const [subject, bucket] of buckets) if (bucket.full()) buckets.delete(subject)
      }
      let bucket = buckets.get(viewer.sub)
      if (!bucket) {
        bucket = createTokenBucket({ perSecond, burst, now })
        buckets.set(viewer.sub, bucket)
      }
      return bucket.take()
    },
  }
}
