import type { Role } from '../../events/channels.js'
import type { AlertLevel, Json, NotificationAudience } from '../../events/event-map.js'
import type { Queryable } from '../database.js'
import { toIso } from './sql-values.js'

export interface Notification {
  readonly id: string
  readonly audience: NotificationAudience
  /** The user id or role it is addressed to; null for everyone. */
  readonly target: string | null
  readonly title: string
  readonly body: string
  readonly level: AlertLevel
  readonly data: Json
  readonly createdAt: string
}

/** A notification as one reader's inbox shows it. */
export interface InboxItem extends Notification {
  readonly readAt: string | null
}

/** Whose inbox: the notifications addressed to this user id, this role, or everyone. */
export interface InboxOwner {
  readonly userId: string
  readonly role: Role
}

/** Where a page of the inbox starts: strictly older than this item. */
export interface InboxPosition {
  readonly createdAt: string
  readonly id: string
}

interface InboxRow {
  id: string
  audience: NotificationAudience
  target: string | null
  title: string
  body: string
  level: AlertLevel
  data: Json | null
  created_at: Date | string
  read_at: Date | string | null
}

const toItem = (row: InboxRow): InboxItem => ({
  id: row.id,
  audience: row.audience,
  target: row.target,
  title: row.title,
  body: row.body,
  level: row.level,
  data: row.data ?? null,
  createdAt: toIso(row.created_at),
  readAt: row.read_at === null ? null : toIso(row.read_at),
})

// $1 = user id, $2 = role; `n` is notifications, `r` the owner's read row (left joined).
const ADDRESSED_TO_OWNER = `((n.audience = 'USER' and n.target = $1)
  or (n.audience = 'ROLE' and n.target = $2) or n.audience = 'EVERYONE')`
const INBOX_FROM = `from notifications n
  left join notification_reads r on r.notification_id = n.id and r.user_id = $1`
const ITEM_COLUMNS =
  'n.id, n.audience, n.target, n.title, n.body, n.level, n.data, n.created_at, r.read_at'

/** Stores a notification in the inbox of everyone it is addressed to. */
export async function insertNotification(tx: Queryable, notification: Notification): Promise<void> {
  await tx.query(
    `insert into notifications (id, audience, target, title, body, level, data, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      notification.id,
      notification.audience,
      notification.target,
      notification.title,
      notification.body,
      notification.level,
      JSON.stringify(notification.data),
      notification.createdAt,
    ],
  )
}

/**
 * A page of `owner`'s inbox, newest first, starting after `before` when given. Returns up to
 * `limit` items.
 */
export async function listInbox(
  db: Queryable,
  owner: InboxOwner,
  page: { unreadOnly: boolean; limit: number; before: InboxPosition | undefined },
): Promise<InboxItem[]> {
  const rows = await db.query<InboxRow>(
    `select ${ITEM_COLUMNS} ${INBOX_FROM}
     where ${ADDRESSED_TO_OWNER}
       and ($3::boolean = false or r.read_at is null)
       and ($4::timestamptz is null or (n.created_at, n.id) < ($4::timestamptz, $5::text))
     order by n.created_at desc, n.id desc
     limit $6`,
    [
      owner.userId,
      owner.role,
      page.unreadOnly,
      page.before?.createdAt ?? null,
      page.before?.id ?? null,
      page.limit,
    ],
  )
  return rows.map(toItem)
}

/** How many notifications of `owner`'s inbox have no read mark. */
export async function countUnread(db: Queryable, owner: InboxOwner): Promise<number> {
  const [row] = await db.query<{ unread: string | number }>(
    `select count(*) as unread ${INBOX_FROM} where ${ADDRESSED_TO_OWNER} and r.read_at is null`,
    [owner.userId, owner.role],
  )
  return Number(row?.unread ?? 0)
}

/**
 * Marks one notification of `owner`'s inbox read (keeping the first read time when it already
 * was) and returns it; `undefined` when it is not in that inbox.
 */
export async function markRead(
  tx: Queryable,
  owner: InboxOwner,
  notificationId: string,
  at: string,
): Promise<InboxItem | undefined> {
  await tx.query(
    `insert into notification_reads (user_id, notification_id, read_at)
     select $1, n.id, $4 from notifications n where n.id = $3 and ${ADDRESSED_TO_OWNER}
     on conflict do nothing`,
    [owner.userId, owner.role, notificationId, at],
  )
  const [row] = await tx.query<InboxRow>(
    `select ${ITEM_COLUMNS} ${INBOX_FROM} where n.id = $3 and ${ADDRESSED_TO_OWNER}`,
    [owner.userId, owner.role, notificationId],
  )
  return row && toItem(row)
}

/** Marks every unread notification of `owner`'s inbox read; returns how many it marked. */
export async function markAllRead(tx: Queryable, owner: InboxOwner, at: string): Promise<number> {
  const rows = await tx.query(
    `insert into notification_reads (user_id, notification_id, read_at)
     select $1, n.id, $3 from notifications n where ${ADDRESSED_TO_OWNER}
     on conflict do nothing returning notification_id`,
    [owner.userId, owner.role, at],
  )
  return rows.length
}
