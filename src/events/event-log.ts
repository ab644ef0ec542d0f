import type { Queryable } from '../db/database.js'
import type { EventMap, EventType } from './event-map.js'
import type { StoredEvent } from './stored-event.js'

interface EventRow {
  channel: string
  seq: string | number
  type: string
  data: unknown
  published_at: Date | string
}

const EVENT_COLUMNS = 'channel, seq, type, data, published_at'

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    channel: row.channel,
    seq: Number(row.seq),
    type: row.type as EventType,
    data: row.data as EventMap[EventType],
    publishedAt: new Date(row.published_at).toISOString(),
  }
}

/**
 * Appends events of one type to `channel` inside the caller's transaction, in order, in one
 * statement, and returns them with their seqs. The upsert on `channels` takes a row lock held
 * until commit, so concurrent appends to one channel get consecutive seqs in commit order and a
 * rolled-back append leaves no gap.
 */
export async function appendEvents<T extends EventType>(
  tx: Queryable,
  channel: string,
  type: T,
  data: ReadonlyArray<EventMap[T]>,
): Promise<Array<StoredEvent<T>>> {
  if (data.length === 0) return []
  // The seqs come from the upsert's row: it moves the head by the count, then each event
  // takes its place below the new head.
  const rows = await tx.query<EventRow>(
    `with head as (
       insert into channels (name, last_seq) values ($1, $2)
       on conflict (name) do update set last_seq = channels.last_seq + $2
       returning last_seq
     )
     insert into events (channel, seq, type, data)
     select $1, head.last_seq - $2 + item.position, $3, item.data::jsonb
     from head, unnest($4::text[]) with ordinality as item(data, position)
     returning ${EVENT_COLUMNS}`,
    [channel, data.length, type, data.map((one) => JSON.stringify(one))],
  )
  if (rows.length !== data.length) {
    throw new Error(`append of ${data.length} events to ${channel} returned ${rows.length} rows`)
  }
  return rows.map((row) => toStoredEvent(row) as StoredEvent<T>).sort((a, b) => a.seq - b.seq)
}

/** Events of `channel` with `afterSeq < seq <= untilSeq` (no upper bound when omitted), in order. */
export async function readEvents(
  db: Queryable,
  channel: string,
  afterSeq: number,
  limit: number,
  untilSeq = Number.MAX_SAFE_INTEGER,
): Promise<StoredEvent[]> {
  const rows = await db.query<EventRow>(
    `select ${EVENT_COLUMNS} from events
     where channel = $1 and seq > $2 and seq <= $3
     order by seq limit $4`,
    [channel, afterSeq, untilSeq, limit],
  )
  return rows.map(toStoredEvent)
}

/** The newest `limit` events of `channel`, oldest first. */
export async function readLatestEvents(
  db: Queryable,
  channel: string,
  limit: number,
): Promise<StoredEvent[]> {
  const rows = await db.query<EventRow>(
    `select ${EVENT_COLUMNS} from events where channel = $1 order by seq desc limit $2`,
    [channel, limit],
  )
  return rows.map(toStoredEvent).reverse()
}

/** How much of a channel's log exists. */
export interface ChannelBounds {
  /** Seq of the newest event appended; 0 when the channel has none. */
  readonly head: number
  /** Highest seq retention may have deleted; 0 when nothing was pruned. */
  readonly prunedThrough: number
}

/** The head and pruned floor of `channel` (both 0 for a channel never appended to). */
export async function channelBounds(db: Queryable, channel: string): Promise<ChannelBounds> {
  const [row] = await db.query<{ last_seq: string | number; pruned_through: string | number }>(
    'select last_seq, pruned_through from channels where name = $1',
    [channel],
  )
  return { head: Number(row?.last_seq ?? 0), prunedThrough: Number(row?.pruned_through ?? 0) }
}

/** What the log keeps: events younger than `maxAgeHours`, and the newest `maxEvents` per channel. */
export interface RetentionLimits {
  readonly maxAgeHours: number
  readonly maxEvents: number
}

/**
 * Deletes, inside the caller's transaction, the prefix of each channel's log that is older
 * than `maxAgeHours` or beyond its newest `maxEvents`, never a channel's newest event (so the
 * head stays readable and `last_seq` keeps counting), and raises `channels.pruned_through` to
 * the highest seq removed. Channels whose row a publish holds right now are skipped until the
 * next run: pruning never waits on an append, so it cannot deadlock with a publish that
 * appends to several channels. Returns how many channels and events it pruned.
 */
export async function pruneEvents(
  tx: Queryable,
  { maxAgeHours, maxEvents }: RetentionLimits,
): Promise<{ channels: number; events: number }> {
  // Age is judged by the newest old-enough seq, so what goes is always a prefix by seq even
  // though published_at (transaction start) is not strictly ordered with seq.
  const [row] = await tx.query<{ channels: string | number; events: string | number }>(
    `with aged as (
       select channel, max(seq) as seq from events
       where published_at < now() - make_interval(hours => $1::int)
       group by channel
     ), floors as (
       select c.name, least(c.last_seq - 1, greatest(c.last_seq - $2::bigint, coalesce(a.seq, 0))) as floor
       from channels c left join aged a on a.channel = c.name
       where least(c.last_seq - 1, greatest(c.last_seq - $2::bigint, coalesce(a.seq, 0))) > c.pruned_through
       for update of c skip locked
     ), raised as (
       update channels c set pruned_through = f.floor from floors f
       where c.name = f.name
       returning c.name, c.pruned_through
     ), removed as (
       delete from events e using raised r
       where e.channel = r.name and e.seq <= r.pruned_through
       returning 1
     )
     select (select count(*) from raised) as channels, (select count(*) from removed) as events`,
    [maxAgeHours, maxEvents],
  )
  return { channels: Number(row?.channels ?? 0), events: Number(row?.events ?? 0) }
}
