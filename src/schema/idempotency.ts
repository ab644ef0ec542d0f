/**
 * The `idempotencyKey` argument of every publish mutation, and the publish that honours it.
 */
import { createHash } from 'node:crypto'
import { type GraphQLResolveInfo, getArgumentValues } from 'graphql'
import type { Context } from '../context.js'
import { badInput } from '../errors.js'
import type { PublishScope } from '../events/publisher.js'
import { builder } from './builder.js'
import { viewerOf, withinPublishRate } from './guards.js'

const MAX_KEY_LENGTH = 255

/** Spread into a publish mutation's `args`: the optional `idempotencyKey: String`. */
export const IDEMPOTENCY_ARGS = builder.args((t) => ({
  idempotencyKey: t.string({
    description: `Makes retries safe: a repeat of this mutation with the same key (per token subject, 1-${MAX_KEY_LENGTH} characters) within the idempotency window returns the first result and publishes nothing again. The same key with another mutation or input is refused (BAD_USER_INPUT).`,
  }),
}))

/** JSON with object keys sorted, so equal inputs hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map(
        (key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`,
      )
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value ?? null)
}

/**
 * Runs a publish mutation's `work` through the publisher. When the mutation got an
 * `idempotencyKey`, the publish happens at most once per key and token subject within the
 * window: a retry gets the first result back. The fingerprint covers the mutation's name and
 * every other argument, read from `info` so no argument can be left out of it. Throws
 * `BAD_USER_INPUT` for an empty or overlong key, or one already used for other work, and
 * `RATE_LIMITED` when the token's subject publishes faster than its rate.
 */
export function publishOnce<T>(
  ctx: Context,
  info: GraphQLResolveInfo,
  work: (scope: PublishScope) => Promise<T>,
): Promise<T> {
  withinPublishRate(ctx)
  const field = info.parentType.getFields()[info.fieldName]
  const [node] = info.fieldNodes
  if (!field || !node) throw new Error(`publishOnce outside a field resolver (${info.fieldName})`)
  const { idempotencyKey: key, ...input } = getArgumentValues(field, node, info.variableValues)
  if (key == null) return ctx.services.publisher.publish(work)
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw badInput(
      'idempotencyKey',
      `expected 1 to ${MAX_KEY_LENGTH} characters, got ${String(key).length}`,
    )
  }
  const fingerprint = createHash('sha256')
    .update(canonicalJson({ operation: info.fieldName, input }))
    .digest('base64url')
  return ctx.services.publisher.publish(work, {
    idempotency: { subject: viewerOf(ctx).sub, key, fingerprint },
  })
}
