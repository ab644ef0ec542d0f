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
 * Appends one event to `channel` inside the caller's transaction and returns it with its seq.
 * The upsert on `channels` takes a row lock held until commit, so concurrent appends to one
 * channel get consecutive seqs in commit order and a rolled-back append leaves no gap.
 */
export async function appendEvent<T extends EventType>(
  tx: Queryable,
  channel: string,
  type: T,
  data: EventMap[T],
): Promise<StoredEvent<T>> {
  const [head] = await tx.query<{ last_seq: string | number }>(
    `insert into channels (name, last_seq) values ($1, 1)
     on conflict (name) do update set last_seq = channels.last_seq + 1
     returning last_seq`,
    [channel],
  )
  const seq = Number(head?.last_seq)
  const [row] = await tx.query<EventRow>(
    `insert into events (channel, seq, type, data) values ($1, $2, $3, $4)
     returning ${EVENT_COLUMNS}`,
    [channel, seq, type, JSON.stringify(data)],
  )
  if (!row) throw new Error(`append to ${channel} returned no row`)
  return toStoredEvent(row) as StoredEvent<T>
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

/** The seq of the last event appended to `channel`; 0 when it has none. */
export async function headSeq(db: Queryable, channel: string): Promise<number> {
  const [row] = await db.query<{ last_seq: string | number }>(
    'select last_seq from channels where name = $1',
    [channel],
  )
  return row ? Number(row.last_seq) : 0
}
