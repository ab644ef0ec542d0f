import type { AccessLookups } from '../auth/channel-access.js'
import type { Queryable } from './database.js'

/** Answers the access rules' questions from the projections in `db`. */
export function createAccessLookups(db: Queryable): AccessLookups {
  return {
    async orderParties(orderId) {
      const [row] = await db.query<{
        seller_id: string
        buyer_id: string
        courier_id: string | null
      }>('select seller_id, buyer_id, courier_id from orders where id = $1', [orderId])
      return row && { sellerId: row.seller_id, buyerId: row.buyer_id, courierId: row.courier_id }
    },
  }
}
