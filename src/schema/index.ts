import { lexicographicSortSchema } from 'graphql'
import { builder } from './builder.js'
import './scalars.js'
import './event-interface.js'
import './recent-events.js'
import './parking.js'
import './orders.js'
import './notifications.js'
import './rooms.js'
import './appointments.js'
import './reservations.js'
import './restaurant-chat.js'
import './admin.js'
import './session.js'

/** The whole schema, fields sorted so the printed form is stable. */
export const schema = lexicographicSortSchema(builder.toSchema())
