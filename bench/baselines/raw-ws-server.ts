/**
 * Raw baseline: a `ws` server with just enough graphql-transport-ws (connection_init -> ack,
 * subscribe -> register, complete, ping) and an HTTP publish endpoint that takes the same
 * `setSpaceState`/`upsertLot` requests as Switchboard. A publish renders the `next` payload
 * once per distinct document on the lot, and each socket gets that pre-serialized frame with
 * its subscription id spliced in: one `send` per socket, no per-subscriber execution.
 *
 * Tokens are verified with jose HS256 (as Switchboard does): once per `connection_init` and
 * once per HTTP publish; a subscription checks the `lot:<id>` scope.
 *
 * Environment: `PORT`, `HOST`, `JWT_SECRET`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type WebSocket, WebSocketServer } from 'ws'
import {
  type BenchViewer,
  baselineSettings,
  canPublish,
  canReadLot,
  createParkingState,
  type LotInput,
  type SpaceEvent,
  type SpaceInput,
  verifyBenchToken,
} from './parking-slice.js'
import { type CompiledSelection, compileSelection, readSubscription } from './raw-selection.js'

const INIT_TIMEOUT = 10_000 // ms a socket may stay without connection_init

interface Member {
  readonly socket: WebSocket
  /** The subscription id as JSON, ready to splice. */
  readonly idJson: string
}

interface Group {
  readonly selection: CompiledSelection
  readonly members: Set<Member>
}

interface Registration {
  readonly lotId: string
  readonly query: string
  readonly member: Member
}

const settings = baselineSettings()
const state = createParkingState()
/** lotId -> document text -> subscribers sharing one rendering. */
const channels = new Map<string, Map<string, Group>>()
const reads = new Map<string, ReturnType<typeof readSubscription>>()

function fanOut(event: SpaceEvent): void {
  const groups = channels.get(event.lotId)
  if (!groups) return
  for (const group of groups.values()) {
    const suffix = `,"type":"next","payload":${group.selection.render(event)}}`
    for (const member of group.members) member.socket.send(`{"id":${member.idJson}${suffix}`)
  }
}

function register(socket: WebSocket, id: string, query: string, selection: CompiledSelection) {
  let groups = channels.get(selection.lotId)
  if (!groups) {
    groups = new Map()
    channels.set(selection.lotId, groups)
  }
  let group = groups.get(query)
  if (!group) {
    group = { selection, members: new Set() }
    groups.set(query, group)
  }
  const member = { socket, idJson: JSON.stringify(id) }
  group.members.add(member)
  return { lotId: selection.lotId, query, member }
}

function unregister({ lotId, query, member }: Registration): void {
  const groups = channels.get(lotId)
  const group = groups?.get(query)
  if (!groups || !group) return
  group.members.delete(member)
  if (group.members.size === 0) groups.delete(query)
  if (groups.size === 0) channels.delete(lotId)
}

function serveSocket(socket: WebSocket): void {
  let viewer: BenchViewer | undefined
  let initialising = false
  const subscriptions = new Map<string, Registration>()
  const initTimer = setTimeout(
    () => socket.close(4408, 'Connection initialisation timeout'),
    INIT_TIMEOUT,
  )
  const sendError = (id: string, message: string) =>
    socket.send(JSON.stringify({ id, type: 'error', payload: [{ message }] }))

  socket.on('message', async (data: Buffer) => {
    let message: { type?: unknown; id?: unknown; payload?: Record<string, unknown> }
    try {
      message = JSON.parse(data.toString())
    } catch {
      return socket.close(4400, 'Invalid message received')
    }
    switch (message.type) {
      case 'connection_init': {
        if (initialising) return socket.close(4429, 'Too many initialisation requests')
        initialising = true
        clearTimeout(initTimer)
        try {
          viewer = await verifyBenchToken(settings.secret, String(message.payload?.['token']))
          socket.send('{"type":"connection_ack"}')
        } catch {
          socket.close(4403, 'Forbidden')
        }
        return
      }
      case 'ping':
        return socket.send('{"type":"pong"}')
      case 'pong':
        return
      case 'subscribe': {
        if (!viewer) return socket.close(4401, 'Unauthorized')
        const id = String(message.id)
        if (subscriptions.has(id)) return socket.close(4409, `Subscriber for ${id} already exists`)
        const query = String(message.payload?.['query'])
        try {
          let read = reads.get(query)
          if (!read) {
            read = readSubscription(query)
            reads.set(query, read)
          }
          const variables = (message.payload?.['variables'] ?? {}) as Record<string, unknown>
          const selection = compileSelection(read, variables)
          if (!canReadLot(viewer, selection.lotId)) return sendError(id, 'forbidden')
          if (!state.hasLot(selection.lotId)) return sendError(id, 'lot not found')
          subscriptions.set(id, register(socket, id, query, selection))
        } catch (error) {
          sendError(id, (error as Error).message)
        }
        return
      }
      case 'complete': {
        const registration = subscriptions.get(String(message.id))
        if (registration) unregister(registration)
        subscriptions.delete(String(message.id))
        return
      }
      default:
        socket.close(4400, 'Invalid message received')
    }
  })
  socket.on('close', () => {
    clearTimeout(initTimer)
    for (const registration of subscriptions.values()) unregister(registration)
    subscriptions.clear()
  })
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function servePublish(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body = ''
  for await (const chunk of req) body += chunk
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
  let viewer: BenchViewer
  try {
    viewer = await verifyBenchToken(settings.secret, bearer ?? '')
  } catch {
    return reply(res, 401, { errors: [{ message: 'a valid token is required' }] })
  }
  if (!canPublish(viewer)) return reply(res, 403, { errors: [{ message: 'forbidden' }] })
  const { query = '', variables = {} } = JSON.parse(body) as {
    query?: string
    variables?: { input?: unknown }
  }
  try {
    if (query.includes('setSpaceState')) {
      const event = state.setSpaceState(variables.input as SpaceInput)
      fanOut(event)
      return reply(res, 200, { data: { setSpaceState: { seq: event.seq } } })
    }
    if (query.includes('upsertLot')) {
      const lot = state.upsertLot(variables.input as LotInput)
      return reply(res, 200, { data: { upsertLot: { id: lot.id } } })
    }
    reply(res, 400, { errors: [{ message: 'only setSpaceState and upsertLot are served' }] })
  } catch (error) {
    reply(res, 200, { errors: [{ message: (error as Error).message }] })
  }
}

const server = createServer((req, res) => {
  if (req.url === '/health') return reply(res, 200, { status: 'ok' })
  if (req.url === '/graphql' && req.method === 'POST') {
    servePublish(req, res).catch((error: unknown) =>
      reply(res, 500, { errors: [{ message: String(error) }] }),
    )
    return
  }
  reply(res, 404, { errors: [{ message: 'not found' }] })
})
new WebSocketServer({ server, path: '/graphql', perMessageDeflate: false }).on(
  'connection',
  serveSocket,
)
server.listen(settings.port, settings.host, () => {
  process.stderr.write(`raw ws baseline listening on ${settings.host}:${settings.port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
