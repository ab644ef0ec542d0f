import type { Queryable } from '../database.js'
import { toIso } from './sql-values.js'

/** A chat message with the position of the event that carried it. */
export interface ChatMessage {
  readonly restaurantId: string
  readonly clientId: string
  readonly seq: number
  readonly messageId: string
  readonly fromUserId: string
  readonly fromRole: string
  readonly body: string
  readonly sentAt: string
  readonly publishedAt: string
}

/** Keeps a chat message for history, under the seq of the event that carried it. */
export async function insertChatMessage(tx: Queryable, message: ChatMessage): Promise<void> {
  await tx.query(
    `insert into restaurant_chat_messages (restaurant_id, client_id, seq, message_id,
       from_user_id, from_role, body, sent_at, published_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      message.restaurantId,
      message.clientId,
      message.seq,
      message.messageId,
      message.fromUserId,
      message.fromRole,
      message.body,
      message.sentAt,
      message.publishedAt,
    ],
  )
}

/** The newest `last` messages of one client's chat with a restaurant, oldest first. */
export async function listChatMessages(
  db: Queryable,
  restaurantId: string,
  clientId: string,
  last: number,
): Promise<ChatMessage[]> {
  const rows = await db.query<{
    restaurant_id: string
    client_id: string
    seq: string | number
    message_id: string
    from_user_id: string
    from_role: string
    body: string
    sent_at: Date | string
    published_at: Date | string
  }>(
    `select * from restaurant_chat_messages where restaurant_id = $1 and client_id = $2
     order by seq desc limit $3`,
    [restaurantId, clientId, last],
  )
  return rows
    .map((row) => ({
      restaurantId: row.restaurant_id,
      clientId: row.client_id,
      seq: Number(row.seq),
      messageId: row.message_id,
      fromUserId: row.from_user_id,
      fromRole: row.from_role,
      body: row.body,
      sentAt: toIso(row.sent_at),
      publishedAt: toIso(row.published_at),
    }))
    .reverse()
}
