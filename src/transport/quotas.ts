/**
 * A counter with a ceiling, e.g. `{ name: 'user:u1:connections', limit: 50 }` or
 * `{ name: 'tenant:lot:42:subscriptions', limit: 100_000 }`.
 */
export interface QuotaKey {
  /** What is counted; claims naming the same key share one count. */
  readonly name: string
  /** How many holders the key admits at once; 0 = unlimited (holders are still counted). */
  readonly limit: number
}

/** A granted claim, to release once its holder is gone, or the key that was full. */
export type QuotaClaim =
  | {
      readonly ok: true
      /** Gives the slots back; later calls do nothing. Never throws. */
      release(): void
    }
  | { readonly ok: false; readonly key: QuotaKey }

/** Slot counts per key, shared by every instance that uses the same medium. */
export interface Quotas {
  /**
   * Claims one slot under every key in `keys` for `holder` (a unique id, e.g. a connection or
   * subscription id), all or nothing: when one key is at its limit, none is taken and the
   * result names that key. A holder already counted under a key takes no second slot there,
   * and one release frees it. Rejects when closed, or with a `RangeError` for a malformed key.
   */
  claim(keys: readonly QuotaKey[], holder: string): Promise<QuotaClaim>
  /** Stops heartbeats and releases every slot this instance holds; claims then reject. */
  close(): Promise<void>
}

/** Throws a `RangeError` naming what is wrong with a claim's keys or holder. */
export function assertValidClaim(keys: readonly QuotaKey[], holder: string): void {
  if (holder === '') throw new RangeError('quota holder must not be empty')
  for (const { name, limit } of keys) {
    if (name === '') throw new RangeError('quota key name must not be empty')
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`quota ${name}: limit must be an integer >= 0, got ${limit}`)
    }
  }
}

/** A release that runs `free` the first time only. */
export function releaseOnce(free: () => void): () => void {
  let released = false
  return () => {
    if (released) return
    released = true
    free()
  }
}

/** Holders per key, as a quota store keeps them in memory (key → holder ids). */
export type HeldSlots = Map<string, Set<string>>

/** Counts `holder` under each of `names` in `held`. */
export function addHolder(held: HeldSlots, names: readonly string[], holder: string): void {
  for (const name of names) {
    let holders = held.get(name)
    if (!holders) {
      holders = new Set()
      held.set(name, holders)
    }
    holders.add(holder)
  }
}

/** Stops counting `holder` under each of `names` in `held`, forgetting keys left empty. */
export function removeHolder(held: HeldSlots, names: readonly string[], holder: string): void {
  for (const name of names) {
    const holders = held.get(name)
    holders?.delete(holder)
    if (holders?.size === 0) held.delete(name)
  }
}

/**
 * Quotas for a single instance, held in memory. Holders vanish with the process, so nothing
 * expires and there is nothing to heartbeat.
 */
export function createInProcessQuotas(): Quotas {
  const held: HeldSlots = new Map()
  let closed = false

  return {
    async claim(keys, holder) {
      if (closed) throw new Error('quotas are closed')
      assertValidClaim(keys, holder)
      for (const key of keys) {
        const holders = held.get(key.name)
        if (key.limit > 0 && !holders?.has(holder) && (holders?.size ?? 0) >= key.limit) {
          return { ok: false, key }
        }
      }
      const names = [...new Set(keys.map((key) => key.name))]
      addHolder(held, names, holder)
      const release = releaseOnce(() => removeHolder(held, names, holder))
      return { ok: true, release }
    },
    async close() {
      closed = true
      held.clear()
    },
  }
}
