/** How long to wait before each reconnect attempt. */
export interface BackoffOptions {
  /** Upper bound of the first wait; each further attempt doubles it. Default `1_000` ms. */
  readonly initialDelayMs?: number
  /** No wait is longer than this, however many attempts failed. Default `30_000` ms. */
  readonly maxDelayMs?: number
  /** Source of randomness in [0, 1). Default `Math.random`; tests pass a fixed one. */
  readonly random?: () => number
}

export const DEFAULT_INITIAL_DELAY = 1_000 // ms
export const DEFAULT_MAX_DELAY = 30_000 // ms

/**
 * The wait before reconnect attempt `attempt` (0 for the first retry after a disconnect):
 * exponential backoff with full jitter, a uniform draw in
 * `[0, min(maxDelayMs, initialDelayMs * 2^attempt))`. Full jitter spreads the clients of a
 * restarted or drained instance over the whole window instead of having them all come back
 * at the same instant.
 */
export function backoffDelay(
  attempt: number,
  {
    initialDelayMs = DEFAULT_INITIAL_DELAY,
    maxDelayMs = DEFAULT_MAX_DELAY,
    random = Math.random,
  }: BackoffOptions = {},
): number {
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt))
  return Math.floor(random() * ceiling)
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
