/**
 * Vanilla baseline: graphql-yoga with graphql-ws (`useServer`, Yoga's documented recipe that
 * runs each operation through `yoga.getEnveloped`) and Yoga's `createPubSub`, serving the
 * parking slice of Switchboard's schema. No log, no database: a lot lives in memory.
 *
 * Tokens are verified with jose HS256 (as Switchboard does): once per `connection_init` and
 * once per HTTP publish; a subscription checks the `lot:<id>` scope.
 *
 * Environment: `PORT`, `HOST`, `JWT_SECRET`.
 */
import { createServer } from 'node:http'
import { GraphQLError } from 'graphql'
import { useServer } from 'graphql-ws/use/ws'
import { createPubSub, createSchema, createYoga, type YogaInitialContext } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import {
  type BenchViewer,
  baselineSettings,
  canPublish,
  canReadLot,
  createParkingState,
  type LotInput,
  PARKING_SLICE_SDL,
  type SpaceEvent,
  type SpaceInput,
  verifyBenchToken,
} from './parking-slice.js'

type Context = YogaInitialContext & { viewer?: BenchViewer | undefined }

const settings = baselineSettings()
const state = createParkingState()
const pubSub = createPubSub<{ parkingUpdated: [lotId: string, event: SpaceEvent] }>()

/** The viewer of an HTTP request (bearer token) or of the socket (connection_init). */
async function viewerOf(context: Context): Promise<BenchViewer> {
  if (context.viewer) return context.viewer
  const bearer = /^Bearer\s+(\S+)$/i.exec(context.request?.headers.get('authorization') ?? '')
  if (!bearer?.[1]) throw new GraphQLError('a token is required')
  return verifyBenchToken(settings.secret, bearer[1])
}

async function publisherOf(context: Context): Promise<BenchViewer> {
  const viewer = await viewerOf(context)
  if (!canPublish(viewer)) throw new GraphQLError('requires role service or admin')
  return viewer
}

const schema = createSchema<Context>({
  typeDefs: PARKING_SLICE_SDL,
  resolvers: {
    Query: { lot: () => null },
    Mutation: {
      upsertLot: async (_root, { input }: { input: LotInput }, context) => {
        await publisherOf(context)
        return state.upsertLot(input)
      },
      setSpaceState: async (_root, { input }: { input: SpaceInput }, context) => {
        await publisherOf(context)
        const event = state.setSpaceState(input)
        pubSub.publish('parkingUpdated', input.lotId, event)
        return event
      },
    },
    Subscription: {
      parkingUpdated: {
        subscribe: async (_root, { lotId }: { lotId: string }, context) => {
          if (!canReadLot(await viewerOf(context), lotId)) throw new GraphQLError('forbidden')
          if (!state.hasLot(lotId)) throw new GraphQLError(`lot "${lotId}" not found`)
          return pubSub.subscribe('parkingUpdated', lotId)
        },
        resolve: (event: SpaceEvent) => event,
      },
    },
    ParkingEvent: { __resolveType: (event: SpaceEvent) => event.__typename },
    Event: { __resolveType: (event: SpaceEvent) => event.__typename },
  },
})

const yoga = createYoga<Context>({
  schema,
  graphiql: false,
  landingPage: false,
  logging: 'warn',
})

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
    return
  }
  void yoga(req, res)
})
const wsServer = new WebSocketServer({ server, path: yoga.graphqlEndpoint })
const viewers = new WeakMap<object, BenchViewer>()

useServer(
  {
    execute: (args) => (args.rootValue as Enveloped).execute(args),
    subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
    onConnect: async (ctx) => {
      const token = ctx.connectionParams?.['token']
      if (typeof token !== 'string') return false
      try {
        viewers.set(ctx, await verifyBenchToken(settings.secret, token))
        return true
      } catch {
        return false
      }
    },
    onSubscribe: async (ctx, _id, params) => {
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        params,
        viewer: viewers.get(ctx),
      })
      const args = {
        schema,
        operationName: params.operationName ?? null,
        document: parse(params.query),
        variableValues: params.variables ?? null,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe },
      }
      const errors = validate(args.schema, args.document)
      if (errors.length) return errors
      return args
    },
  },
  wsServer,
)

type Enveloped = ReturnType<typeof yoga.getEnveloped>

server.listen(settings.port, settings.host, () => {
  process.stderr.write(`yoga baseline listening on ${settings.host}:${settings.port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
