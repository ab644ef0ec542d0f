import type { Queryable } from '../db/database.js'
import { badInput } from '../errors.js'

/** Identifies one publish for deduplication. */
export interface IdempotencyKey {
  /** Whose key it is (the token's `sub`): keys of different subjects never collide. */
  readonly subject: string
  /** The client's `idempotencyKey`. */
  readonly key: string
  /** Hash of the operation and its input: the same key with other work is refused. */
  readonly fingerprint: string
}

/** Either the key is now held by this transaction, or a publish with it already committed. */
export type Claim =
  | { readonly kind: 'claimed' }
  | { readonly kind: 'done'; readonly result: unknown }

const CLAIM_ATTEMPTS = 3

/**
 * Claims `key` inside the publish transaction `tx`. A new key, or one older than `windowMs`,
 * is (re)claimed: the row stays locked until commit, so a concurrent publish with the same key,
 * on any instance, waits on it and then finds the committed result. A key used within the
 * window returns that publish's stored result. Throws `BAD_USER_INPUT` when the key was used
 * for a different operation or input.
 */
export async function claimIdempotencyKey(
  tx: Queryable,
  { subject, key, fingerprint }: IdempotencyKey,
  windowMs: number,
): Promise<Claim> {
  // Loops only when the row vanished between the two statements (expired and cleaned up).
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const claimed = await tx.query(
      `insert into idempotency_keys (subject, key, fingerprint) values ($1, $2, $3)
       on conflict (subject, key) do update
         set fingerprint = excluded.fingerprint, result = null, created_at = now()
         where idempotency_keys.created_at < now() - make_interval(secs => $4::float8 / 1000)
       returning 1`,
      [subject, key, fingerprint, windowMs],
    )
    if (claimed.length > 0) return { kind: 'claimed' }
    const [earlier] = await tx.query<{ fingerprint: string; result: unknown }>(
      'select fingerprint, result from idempotency_keys where subject = $1 and key = $2',
      [subject, key],
    )
    if (!earlier) continue
    if (earlier.fingerprint !== fingerprint) {
      throw badInput(
        'idempotencyKey',
        'already used for a different operation or input; use a new key for a new publish',
      )
    }
    return { kind: 'done', result: earlier.result }
  }
  throw new Error(`idempotency key could not be claimed after ${CLAIM_ATTEMPTS} attempts`)
}

/** Stores the result of the publish that claimed the key, in the same transaction. */
export async function saveIdempotentResult(
  tx: Queryable,
  { subject, key }: IdempotencyKey,
  result: unknown,
): Promise<void> {
  await tx.query('update idempotency_keys set result = $3 where subject = $1 and key = $2', [
    subject,
    key,
    JSON.stringify(result ?? null),
  ])
}

/** Deletes keys older than `windowMs` (they no longer deduplicate anything); returns how many. */
export async function deleteExpiredIdempotencyKeys(
  db: Queryable,
  windowMs: number,
): Promise<number> {
  const rows = await db.query(
    `delete from idempotency_keys
     where created_at < now() - make_interval(secs => $1::float8 / 1000)
     returning 1`,
    [windowMs],
  )
  return rows.length
}
