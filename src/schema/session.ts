import { badInput } from '../errors.js'
import { builder } from './builder.js'
import { viewerOf } from './guards.js'

/** The token a connection runs with now. */
interface SessionView {
  readonly sub: string
  readonly expiresAt: string | null
}

const SessionRef = builder.objectRef<SessionView>('Session').implement({
  description: 'The identity and token lifetime of the connection an operation runs on.',
  fields: (t) => ({
    sub: t.exposeID('sub', { description: 'The token subject.' }),
    expiresAt: t.expose('expiresAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the token expires and the connection closes (4403) unless refreshed.',
    }),
  }),
})

const toIso = (expiresAt: number | undefined) =>
  expiresAt === undefined ? null : new Date(expiresAt * 1000).toISOString()

builder.mutationFields((t) => ({
  refreshToken: t.field({
    type: SessionRef,
    description:
      "Replaces the token of the WebSocket connection this runs on with a fresh one for the same subject: the connection's expiry moves and its subscriptions go on untouched. Only over graphql-ws.",
    args: { token: t.arg.string({ required: true, description: 'The new JWT.' }) },
    resolve: async (_root, args, ctx) => {
      viewerOf(ctx)
      if (!ctx.connection) {
        throw badInput('token', 'refreshToken only works over a WebSocket connection')
      }
      const viewer = await ctx.connection.refreshToken(args.token)
      return { sub: viewer.sub, expiresAt: toIso(viewer.expiresAt) }
    },
  }),
}))
