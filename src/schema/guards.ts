import { assertCanPublish, assertCanRead, requireViewer } from '../auth/channel-access.js'
import type { Viewer } from '../auth/viewer.js'
import type { Context } from '../context.js'
import { badInput, ErrorCode, rateLimited } from '../errors.js'
import { type ChannelRef, isValidId } from '../events/channels.js'

/** The authenticated viewer, or an `UNAUTHENTICATED` error. */
export function viewerOf(ctx: Context): Viewer {
  return requireViewer(ctx.viewer, ctx.authRefusal)
}

/** The viewer when it may publish (`service` or `admin`); `FORBIDDEN` otherwise. */
export function publisherOf(ctx: Context): Viewer {
  const viewer = viewerOf(ctx)
  assertCanPublish(viewer)
  return viewer
}

/**
 * Counts one publish against the viewer's publish rate; `RATE_LIMITED` when the token's
 * subject is over it. Every publish mutation passes here (through `publishOnce`).
 */
export function withinPublishRate(ctx: Context): void {
  const retryAfterMs = ctx.services.publishRate.take(viewerOf(ctx))
  if (retryAfterMs > 0) throw rateLimited(retryAfterMs)
}

/** The viewer when it may read every channel given; `FORBIDDEN` (counted) otherwise. */
export async function readerOf(ctx: Context, channels: readonly ChannelRef[]): Promise<Viewer> {
  const viewer = viewerOf(ctx)
  try {
    await assertCanRead(viewer, channels, ctx.services.lookups)
  } catch (error) {
    const code = (error as { extensions?: Record<string, unknown> }).extensions?.['code']
    if (code === ErrorCode.FORBIDDEN) ctx.services.metrics.authRefusals.inc({ code })
    throw error
  }
  return viewer
}

/** Checks an id argument fits in a channel name; `BAD_USER_INPUT` naming the field otherwise. */
export function checkId(field: string, value: string): string {
  if (!isValidId(value)) {
    throw badInput(
      field,
      `expected 1-128 characters of A-Z a-z 0-9 _ . @ | -, got ${JSON.stringify(value.slice(0, 40))}`,
    )
  }
  return value
}
