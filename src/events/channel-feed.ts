import type { Queryable } from '../db/database.js'
import { badCursor, cursorExpired } from '../errors.js'
import type { Bus } from './bus.js'
import { encodeCursor, type Positions } from './cursor.js'
import { channelBounds, readEvents } from './event-log.js'
import type { DeliveredEvent, StoredEvent } from './stored-event.js'

const REPLAY_PAGE_SIZE = 500
// Events handed to members in one dispatch: several pending events reach a socket in one write.
const MAX_BATCH = 64
// Deliveries (member × event) between two yields to the event loop during one dispatch, so a
// fan-out to 10k sockets never blocks the loop for long.
const DELIVERIES_PER_SLICE = 1_000

/**
 * What the members of one group share for each batch, e.g. one GraphQL execution and one
 * serialized payload per event. Groups are compared by identity: a dispatch renders each once.
 */
export interface FeedGroup<R = unknown> {
  render(batch: readonly DeliveredEvent[]): R | Promise<R>
}

/** One subscriber of a feed. */
export interface FeedMember<R = unknown> {
  readonly group: FeedGroup<R>
  /** Takes a batch of events, in order, with what its group rendered for it. Synchronous. */
  deliver(batch: readonly DeliveredEvent[], rendered: R): void
  /** Resolves when the member can take more replayed events (backpressure while catching up). */
  drained?(): Promise<void> | undefined
  /** The feed failed (a pruned gap, an unreadable log); nothing more arrives. */
  fail(error: unknown): void
  /**
   * Checks that the member may still read the feed's channels; rejects (e.g. FORBIDDEN) when
   * not, and the member is failed with that error. Called when a channel signals that access
   * to it changed (an order got another courier), before any later event reaches the member.
   */
  recheck?(): Promise<void>
}

export interface JoinOptions {
  /** The channels to follow (already authorized; see `FeedMember.recheck`). */
  readonly channels: readonly string[]
  /**
   * Where to start per channel: events after this seq are replayed from the log first.
   * Channels missing here start live. A seq past the newest event refuses with `BAD_CURSOR`;
   * one whose next event retention pruned refuses with `CURSOR_EXPIRED`.
   */
  readonly from?: Positions | undefined
}

/** Shares one live, ordered, gap-free feed per set of channels among all its subscribers. */
export interface FeedHub {
  /**
   * Adds `member` to the feed of `channels`, opening the feed when it is the first. Resolves
   * once the member is positioned: every event committed after that reaches it. Replay from
   * `from` runs after that, then the member goes live with no gap and no duplicate. Resolves
   * with the function that removes the member.
   */
  join<R>(options: JoinOptions, member: FeedMember<R>): Promise<() => void>
  /** Feeds open now (one bus subscription per channel each). */
  size(): number
}

export interface FeedHubDeps {
  readonly db: Queryable
  readonly bus: Bus
}

const RESYNC = Symbol('resync')
const RECHECK = Symbol('recheck')
type Incoming = StoredEvent | typeof RESYNC | typeof RECHECK | { readonly pullTo: Positions }

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

const isPromise = <T>(value: T | Promise<T>): value is Promise<T> =>
  typeof (value as { then?: unknown } | null)?.then === 'function'

/** Opens one hub; feeds open on the first member and close with the last. */
export function createFeedHub({ db, bus }: FeedHubDeps): FeedHub {
  const feeds = new Map<string, Feed>()
  return {
    async join(options, member) {
      const channels = [...new Set(options.channels)].sort()
      const key = channels.join('\n')
      let feed = feeds.get(key)
      if (!feed) {
        const opened = openFeed(db, bus, channels, () => feeds.delete(key))
        feeds.set(key, opened)
        feed = opened
      }
      return feed.join(options.from, member as FeedMember)
    },
    size: () => feeds.size,
  }
}

interface Feed {
  join(from: Positions | undefined, member: FeedMember): Promise<() => void>
}

/**
 * The feed of one set of channels: one bus subscription per channel, events in seq order per
 * channel, gaps filled from the log, a resync re-reading it; each batch rendered once per group
 * and handed to every live member.
 */
function openFeed(
  db: Queryable,
  bus: Bus,
  channels: readonly string[],
  onClosed: () => void,
): Feed {
  const positions = new Map<string, number>()
  const members = new Set<FeedMember>()
  // Members still being positioned or replaying: they keep the feed open.
  const pending = new Set<FeedMember>()
  const incoming: Incoming[] = []
  const unsubscribes: Array<() => void> = []
  let advanced: { promise: Promise<void>; resolve: () => void } | undefined
  let draining = false
  let closed = false

  const close = () => {
    if (closed) return
    closed = true
    for (const unsubscribe of unsubscribes) unsubscribe()
    onClosed()
  }
  const closeIfUnused = () => {
    if (members.size === 0 && pending.size === 0) close()
  }
  const fail = (error: unknown) => {
    const everyone = [...members, ...pending]
    members.clear()
    pending.clear()
    close()
    for (const member of everyone) member.fail(error)
  }
  const signalAdvance = () => {
    advanced?.resolve()
    advanced = undefined
  }
  const nextAdvance = () => {
    if (!advanced) {
      let resolve = () => {}
      const promise = new Promise<void>((r) => {
        resolve = r
      })
      advanced = { promise, resolve }
    }
    return advanced.promise
  }

  /** Renders `batch` once per group of `targets`, then hands it to each, yielding between slices. */
  const dispatch = async (batch: DeliveredEvent[], targets: readonly FeedMember[]) => {
    const rendered = new Map<FeedGroup, unknown>()
    for (const member of targets) {
      if (rendered.has(member.group)) continue
      const result = member.group.render(batch)
      rendered.set(member.group, isPromise(result) ? await result : result)
    }
    const perSlice = Math.max(1, Math.floor(DELIVERIES_PER_SLICE / batch.length))
    for (let i = 0; i < targets.length; i++) {
      if (i > 0 && i % perSlice === 0) await yieldToLoop()
      const member = targets[i] as FeedMember
      // A member that left during an earlier slice gets nothing more.
      if (!members.has(member)) continue
      member.deliver(batch, rendered.get(member.group))
    }
  }

  /** Fails the members that may no longer read the channels; the others go on. */
  const recheckMembers = async () => {
    const everyone = [...members, ...pending]
    const outcomes = await Promise.allSettled(everyone.map((member) => member.recheck?.()))
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'fulfilled') return
      const member = everyone[index] as FeedMember
      members.delete(member)
      pending.delete(member)
      member.fail(outcome.reason)
    })
    closeIfUnused()
  }

  let batch: DeliveredEvent[] = []
  const flush = async () => {
    if (batch.length === 0) return
    const out = batch
    batch = []
    signalAdvance()
    if (members.size > 0) await dispatch(out, [...members])
  }
  /** Moves the feed past `event` and queues it for the members. */
  const advance = async (event: StoredEvent) => {
    // Every path hands events over in seq order with gaps filled from the log, so a missing
    // seq can only mean retention pruned it under a lagging feed: fail, never skip.
    if (event.seq !== (positions.get(event.channel) ?? 0) + 1) throw cursorExpired()
    positions.set(event.channel, event.seq)
    batch.push({ ...event, cursor: encodeCursor(positions) })
    if (batch.length >= MAX_BATCH) await flush()
  }
  /** Advances `channel` through `untilSeq` from the log. */
  const fill = async (channel: string, untilSeq: number) => {
    for (;;) {
      const after = positions.get(channel) ?? 0
      if (after >= untilSeq) return
      const page = await readEvents(db, channel, after, REPLAY_PAGE_SIZE, untilSeq)
      for (const event of page) await advance(event)
      if (page.length < REPLAY_PAGE_SIZE) return
    }
  }

  const drain = async () => {
    if (draining) return
    draining = true
    try {
      while (incoming.length > 0 && !closed) {
        const next = incoming.shift() as Incoming
        if (next === RESYNC) {
          await replayInto(db, channels, positions, () => undefined, advance)
        } else if (next === RECHECK) {
          await flush()
          await recheckMembers()
        } else if ('pullTo' in next) {
          for (const [channel, seq] of next.pullTo) await fill(channel, seq)
        } else {
          const last = positions.get(next.channel)
          if (last === undefined || next.seq <= last) continue
          if (next.seq > last + 1) await fill(next.channel, next.seq - 1)
          await advance(next)
        }
        if (incoming.length === 0 || batch.length >= MAX_BATCH) await flush()
      }
      await flush()
    } catch (error) {
      fail(error)
    } finally {
      draining = false
    }
  }
  const receive = (item: Incoming) => {
    if (closed) return
    incoming.push(item)
    if (ready.settled) void drain()
  }

  const ready = {
    settled: false,
    promise: (async () => {
      for (const channel of channels) {
        unsubscribes.push(
          await bus.subscribe(channel, (message) => {
            if (message.kind === 'event') receive(message.event)
            else if (message.kind === 'resync') receive(RESYNC)
            else receive(RECHECK)
          }),
        )
      }
      for (const channel of channels) {
        positions.set(channel, (await channelBounds(db, channel)).head)
      }
    })(),
  }
  ready.promise.then(
    () => {
      ready.settled = true
      void drain()
    },
    // Every joiner waiting on `ready` gets the error; a later join opens a fresh feed.
    () => {
      pending.clear()
      close()
    },
  )

  /** Replays the log after `start` to `member`, then makes it live. */
  const catchUp = async (member: FeedMember, start: Map<string, number>) => {
    const own = new Map(start)
    // A replay can hold far more than a socket may buffer: it goes one event at a time,
    // waiting whenever the member has too much pending, so a reader that keeps up is never
    // mistaken for a slow one.
    const deliverOwn = async (events: StoredEvent[]) => {
      for (const event of events) {
        if (!pending.has(member)) return
        if (event.seq !== (own.get(event.channel) ?? 0) + 1) throw cursorExpired()
        own.set(event.channel, event.seq)
        const one = [{ ...event, cursor: encodeCursor(own) }]
        const result = member.group.render(one)
        member.deliver(one, isPromise(result) ? await result : result)
        const draining = member.drained?.()
        if (draining) await draining
      }
    }
    for (;;) {
      if (!pending.has(member)) return
      const behind = channels.some((c) => (own.get(c) ?? 0) < (positions.get(c) ?? 0))
      const ahead = channels.some((c) => (own.get(c) ?? 0) > (positions.get(c) ?? 0))
      if (!behind && !ahead) {
        pending.delete(member)
        members.add(member)
        return
      }
      if (behind) {
        let page: StoredEvent[] = []
        const bound = (channel: string) => positions.get(channel)
        await replayInto(db, channels, own, bound, async (event) => {
          page.push(event)
          if (page.length >= REPLAY_PAGE_SIZE) {
            const full = page
            page = []
            await deliverOwn(full)
          }
        })
        if (page.length > 0) await deliverOwn(page)
      } else {
        // The member's cursor is ahead of this feed (it came from a faster instance): let the
        // feed read up to it, then skip nothing and duplicate nothing.
        const waited = nextAdvance()
        receive({ pullTo: new Map(own) })
        await waited
      }
    }
  }

  return {
    async join(from, member) {
      pending.add(member)
      const leave = () => {
        members.delete(member)
        pending.delete(member)
        closeIfUnused()
      }
      try {
        await ready.promise
        if (closed) throw new Error('feed closed')
        const start = new Map(positions)
        for (const [channel, after] of from ?? []) {
          if (!channels.includes(channel)) continue
          const { head, prunedThrough } = await channelBounds(db, channel)
          // A position past the head cannot come from this log (a forged cursor, or one kept
          // across a restore from an older backup); following it would silently skip every
          // event up to that seq, so the subscription fails instead.
          if (after > head) throw badCursor('it is ahead of the event log')
          if (after < prunedThrough) throw cursorExpired()
          start.set(channel, after)
        }
        const replays = channels.some((c) => start.get(c) !== positions.get(c))
        if (!replays) {
          pending.delete(member)
          members.add(member)
        } else {
          catchUp(member, start).catch((error: unknown) => {
            leave()
            member.fail(error)
          })
        }
        return leave
      } catch (error) {
        leave()
        throw error
      }
    },
  }
}

/**
 * Reads the log after `positions` for `channels`, merged across channels in publish order, up
 * to `until(channel)` per channel (no bound when undefined), handing each event to `take`,
 * which is where positions move.
 */
async function replayInto(
  db: Queryable,
  channels: readonly string[],
  positions: Map<string, number>,
  until: (channel: string) => number | undefined,
  take: (event: StoredEvent) => Promise<void>,
): Promise<void> {
  // How far pages were read per channel; `take` moves the reader's real positions.
  const readTo = new Map(positions)
  const pages = new Map<string, StoredEvent[]>()
  const refill = async (channel: string) => {
    const page = await readEvents(
      db,
      channel,
      readTo.get(channel) ?? 0,
      REPLAY_PAGE_SIZE,
      until(channel),
    )
    const last = page.at(-1)
    if (last) {
      readTo.set(channel, last.seq)
      pages.set(channel, page)
    } else pages.delete(channel)
  }
  for (const channel of channels) await refill(channel)
  while (pages.size > 0) {
    let earliest: StoredEvent | undefined
    for (const page of pages.values()) {
      const head = page[0] as StoredEvent
      if (!earliest || head.publishedAt < earliest.publishedAt) earliest = head
    }
    const event = earliest as StoredEvent
    const page = pages.get(event.channel) as StoredEvent[]
    page.shift()
    await take(event)
    if (page.length === 0) await refill(event.channel)
  }
}
