import { print } from 'graphql'
import type { Client, ClientOptions } from 'graphql-ws'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { RoomMessageDocument, SendRoomMessageDocument } from './generated/graphql.js'
import { type ControlSubscriber, startControlSubscriber } from './utils/control-subscriber.js'
import { fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { type Frame, openRawSocket, type RawSocket } from './utils/raw-socket.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { makeTestStore, TEST_STACK, type TestStore } from './utils/stores.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient } from './utils/ws-client.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example.net'

/** Small limits, so each test crosses one with a handful of sockets. */
const LIMITS = {
  MAX_CONNECTIONS_PER_USER: '2',
  MAX_CONNECTIONS_PER_TENANT: '3',
  MAX_SUBSCRIPTIONS_PER_CONNECTION: '3',
  MAX_SUBSCRIPTIONS_PER_TENANT: '4',
  MAX_CONNECTIONS: '12',
  WS_INIT_TIMEOUT_MS: '500',
  WS_MESSAGE_RATE_PER_SECOND: '5',
  WS_MESSAGE_RATE_BURST: '20',
  // WS_MAX_MESSAGE_BYTES stays at its default (65536): the size test checks the default.
  ALLOWED_ORIGINS: APP,
} as const
const MAX_CONNECTIONS = 12 // MAX_CONNECTIONS above; no other test holds that many at once
const INIT_TIMEOUT = 500 // ms, WS_INIT_TIMEOUT_MS above
const MESSAGE_BURST = 20 // WS_MESSAGE_RATE_BURST above
const MAX_MESSAGE_BYTES = 65_536 // the default of WS_MAX_MESSAGE_BYTES

const ROOM_QUERY = print(RoomMessageDocument)

let server: TestServer
let service: string
let control: ControlSubscriber
const sockets: RawSocket[] = []
const clients: Client[] = []

/** How a connection attempt ended: acknowledged, or closed first. */
type Outcome =
  | { readonly accepted: true; readonly socket: RawSocket }
  | {
      readonly accepted: false
      readonly code: number
      readonly reason: string
      readonly frames: Frame[]
    }

/** Opens a raw socket and sends `connection_init` with `token`; resolves with how it went. */
async function tryConnect(wsUrl: string, token: string): Promise<Outcome> {
  const socket = await openRawSocket(wsUrl)
  sockets.push(socket)
  socket.send({ type: 'connection_init', payload: { token } })
  const acked = socket
    .waitFor((frame) => frame.type === 'connection_ack', 10_000)
    .then(() => 'acked' as const)
  const first = await Promise.race([acked, socket.closed])
  if (first === 'acked') return { accepted: true, socket }
  return { accepted: false, code: first.code, reason: first.reason, frames: socket.frames }
}

/** A socket that must be accepted. */
async function mustConnect(wsUrl: string, token: string): Promise<RawSocket> {
  const outcome = await tryConnect(wsUrl, token)
  if (!outcome.accepted) throw new Error(`refused: ${outcome.code} ${outcome.reason}`)
  return outcome.socket
}

/**
 * Retries a connection until it is accepted: a slot freed by a close is given back once the
 * server saw the close (and, with Redis, once the release reached it).
 */
async function connectOnceFreed(wsUrl: string, token: string): Promise<RawSocket> {
  let socket: RawSocket | undefined
  await vi.waitFor(
    async () => {
      socket = await mustConnect(wsUrl, token)
    },
    { timeout: 5_000, interval: 50 },
  )
  return socket as RawSocket
}

/**
 * Connects a graphql-ws client that retries twice at once, and resolves when it gives up,
 * with how many times it connected and the close codes it saw.
 */
function attemptsUntilGivingUp(
  wsUrl: string,
  token: string,
  options: Partial<ClientOptions> = {},
): Promise<{ attempts: number; codes: number[] }> {
  let attempts = 0
  const codes: number[] = []
  return new Promise((resolve) => {
    clients.push(
      connectClient(wsUrl, token, {
        retryAttempts: 2,
        retryWait: async () => {},
        on: {
          connecting: () => {
            attempts += 1
          },
          closed: (event) => {
            codes.push((event as { code: number }).code)
          },
        },
        onNonLazyError: () => resolve({ attempts, codes }),
        ...options,
      }),
    )
  })
}

/** Subscribes `id` to `room` from its start on `socket`. */
function subscribeRoom(socket: RawSocket, id: string, room: string): void {
  socket.send({
    id,
    type: 'subscribe',
    payload: { query: ROOM_QUERY, variables: { room, after: fromStart({ kind: 'room', room }) } },
  })
}

/** The first frame for `id`: `next` when the subscription runs, `error` when it was refused. */
function firstFrameOf(socket: RawSocket, id: string): Promise<Frame> {
  return socket.waitFor((frame) => frame.id === id)
}

/** Seqs of the `next` frames `socket` received for `id`. */
function seqsOf(socket: RawSocket, id: string): number[] {
  return socket.frames
    .filter((frame) => frame.id === id && frame.type === 'next')
    .map(
      (frame) => (frame.payload as { data: { roomMessage: { seq: number } } }).data.roomMessage.seq,
    )
}

/** Sends a message to `room` over HTTP; resolves with its seq. */
async function sendToRoom(target: TestServer, room: string, body: string): Promise<number> {
  const { sendRoomMessage } = await mustExecute(target.url, service, SendRoomMessageDocument, {
    input: { room, body },
  })
  return sendRoomMessage.seq
}

/** Resolves once `socket` received the event `seq` on subscription `id`. */
async function received(socket: RawSocket, id: string, seq: number): Promise<void> {
  await socket.waitFor(
    (frame) =>
      frame.id === id &&
      frame.type === 'next' &&
      (frame.payload as { data: { roomMessage: { seq: number } } }).data.roomMessage.seq === seq,
  )
}

/** `/health` counts of `target`. */
async function health(target: TestServer): Promise<{ connections: number; subscriptions: number }> {
  const response = await fetch(`${target.origin}/health`)
  return (await response.json()) as { connections: number; subscriptions: number }
}

async function closeAll(): Promise<void> {
  await Promise.all(sockets.splice(0).map((socket) => socket.close()))
  await Promise.all(clients.splice(0).map((client) => client.dispose()))
}

beforeAll(async () => {
  server = await startTestServer({ env: LIMITS })
  service = await serviceToken()
  control = await startControlSubscriber({
    wsUrl: server.wsUrl,
    url: server.url,
    token: await tokenFor({ sub: 'control', role: 'admin' }),
    publisherToken: service,
    room: 'control',
  })
  await control.expectDelivery()
})

afterEach(async () => {
  // Each limit crossed left the bystander alone.
  await control.expectDelivery()
  await closeAll()
})

afterAll(async () => {
  await closeAll()
  await control?.dispose()
  await server?.stop()
})

describe('connections per user (MAX_CONNECTIONS_PER_USER)', () => {
  it('closes a connection over the limit with 4029 before acknowledging it', async () => {
    const ann = await tokenFor({ sub: 'ann', role: 'client' })
    const first = await mustConnect(server.wsUrl, ann)
    await mustConnect(server.wsUrl, ann)

    const third = await tryConnect(server.wsUrl, ann)
    expect(third).toMatchObject({
      accepted: false,
      code: 4029,
      reason: 'Too many connections for user:ann',
      frames: [],
    })
    // Another user is not concerned, and ann's open sockets go on.
    await mustConnect(server.wsUrl, await tokenFor({ sub: 'bob', role: 'client' }))
    first.send({ type: 'ping' })
    await first.waitFor((frame) => frame.type === 'pong')
  })

  it('gives the slot back when a connection closes', async () => {
    const cid = await tokenFor({ sub: 'cid', role: 'client' })
    const first = await mustConnect(server.wsUrl, cid)
    await mustConnect(server.wsUrl, cid)
    expect(await tryConnect(server.wsUrl, cid)).toMatchObject({ accepted: false, code: 4029 })

    await first.close()
    const again = await connectOnceFreed(server.wsUrl, cid)
    again.send({ type: 'ping' })
    await again.waitFor((frame) => frame.type === 'pong')
    // Back at the limit.
    expect(await tryConnect(server.wsUrl, cid)).toMatchObject({ accepted: false, code: 4029 })
  })

  it('makes the graphql-ws client retry 4029', async () => {
    const dee = await tokenFor({ sub: 'dee', role: 'client' })
    await mustConnect(server.wsUrl, dee)
    await mustConnect(server.wsUrl, dee)
    expect(await attemptsUntilGivingUp(server.wsUrl, dee)).toEqual({
      attempts: 3,
      codes: [4029, 4029, 4029],
    })
  })
})

describe('connections per tenant (MAX_CONNECTIONS_PER_TENANT)', () => {
  it('closes a connection over the limit of a scope with 4029; other scopes connect', async () => {
    const member = (sub: string, scopes: string[]) => tokenFor({ sub, role: 'client', scopes })
    for (const sub of ['t1-a', 't1-b', 't1-c']) {
      await mustConnect(server.wsUrl, await member(sub, ['room:t1']))
    }
    expect(await tryConnect(server.wsUrl, await member('t1-d', ['room:t1']))).toMatchObject({
      accepted: false,
      code: 4029,
      reason: 'Too many connections for tenant:room:t1',
      frames: [],
    })
    // All or nothing: a token of both scopes is refused, and takes no slot of room:t2.
    expect(
      await tryConnect(server.wsUrl, await member('t12', ['room:t2', 'room:t1'])),
    ).toMatchObject({ accepted: false, code: 4029 })
    for (const sub of ['t2-a', 't2-b', 't2-c']) {
      await mustConnect(server.wsUrl, await member(sub, ['room:t2']))
    }
  })
})

describe('subscriptions per connection (MAX_SUBSCRIPTIONS_PER_CONNECTION)', () => {
  it('refuses a subscription over the limit with LIMIT_EXCEEDED; the others go on', async () => {
    await sendToRoom(server, 'per-conn', 'first')
    const socket = await mustConnect(server.wsUrl, await adminToken())
    for (const id of ['a', 'b', 'c']) {
      subscribeRoom(socket, id, 'per-conn')
      expect(await firstFrameOf(socket, id)).toMatchObject({ type: 'next' })
    }

    subscribeRoom(socket, 'd', 'per-conn')
    expect(await firstFrameOf(socket, 'd')).toMatchObject({
      type: 'error',
      payload: [
        {
          message: 'limit exceeded: 3 operations per connection',
          extensions: { code: 'LIMIT_EXCEEDED' },
        },
      ],
    })
    const seq = await sendToRoom(server, 'per-conn', 'after the refusal')
    for (const id of ['a', 'b', 'c']) await received(socket, id, seq)
    expect(seqsOf(socket, 'd')).toEqual([])

    // Completing one frees its slot: `d` may subscribe again.
    socket.send({ id: 'a', type: 'complete' })
    subscribeRoom(socket, 'd', 'per-conn')
    await received(socket, 'd', seq)
    expect(seqsOf(socket, 'd')).toEqual([1, seq])
    const last = await sendToRoom(server, 'per-conn', 'after the complete')
    for (const id of ['b', 'c', 'd']) await received(socket, id, last)
    expect(seqsOf(socket, 'a')).not.toContain(last)
  })
})

describe('subscriptions per tenant (MAX_SUBSCRIPTIONS_PER_TENANT)', () => {
  it('refuses a subscription over the limit of a scope; other scopes and subscriptions go on', async () => {
    await sendToRoom(server, 'st', 'first')
    await sendToRoom(server, 'st-other', 'first')
    const tenant = (sub: string, room: string) =>
      tokenFor({ sub, role: 'client', scopes: [`room:${room}`] })
    const a = await mustConnect(server.wsUrl, await tenant('st-a', 'st'))
    const b = await mustConnect(server.wsUrl, await tenant('st-b', 'st'))
    for (const id of ['a1', 'a2', 'a3']) {
      subscribeRoom(a, id, 'st')
      expect(await firstFrameOf(a, id)).toMatchObject({ type: 'next' })
    }
    subscribeRoom(b, 'b1', 'st')
    expect(await firstFrameOf(b, 'b1')).toMatchObject({ type: 'next' })

    subscribeRoom(b, 'b2', 'st')
    const refusal = await firstFrameOf(b, 'b2')
    expect(refusal).toMatchObject({
      type: 'error',
      payload: [{ extensions: { code: 'LIMIT_EXCEEDED' } }],
    })
    expect((refusal.payload as Array<{ message: string }>)[0]?.message).toMatch(
      /^limit exceeded: subscriptions for /,
    )

    // Another tenant is not concerned.
    const other = await mustConnect(server.wsUrl, await tenant('other-a', 'st-other'))
    subscribeRoom(other, 'o1', 'st-other')
    expect(await firstFrameOf(other, 'o1')).toMatchObject({ type: 'next' })

    // The tenant's running subscriptions go on.
    const seq = await sendToRoom(server, 'st', 'after the refusal')
    for (const id of ['a1', 'a2', 'a3']) await received(a, id, seq)
    await received(b, 'b1', seq)

    // Completing one gives the tenant its slot back.
    a.send({ id: 'a1', type: 'complete' })
    let attempt = 0
    await vi.waitFor(
      async () => {
        attempt += 1
        subscribeRoom(b, `retry-${attempt}`, 'st')
        expect(await firstFrameOf(b, `retry-${attempt}`)).toMatchObject({ type: 'next' })
      },
      { timeout: 5_000, interval: 50 },
    )
  })
})

describe('connection_init timeout (WS_INIT_TIMEOUT_MS)', () => {
  it('closes a socket that sends no connection_init with 4408 once the timeout passed', async () => {
    const opened = Date.now()
    const socket = await openRawSocket(server.wsUrl)
    sockets.push(socket)
    expect(await socket.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' })
    const elapsed = Date.now() - opened
    expect(elapsed).toBeGreaterThanOrEqual(INIT_TIMEOUT - 20)
    expect(elapsed).toBeLessThan(INIT_TIMEOUT + 1_000)
    expect(socket.frames).toEqual([])
  })

  it('makes the graphql-ws client retry 4408', async () => {
    // connectionParams that never resolve: the client never sends connection_init.
    const outcome = await attemptsUntilGivingUp(server.wsUrl, service, {
      connectionParams: () => new Promise<Record<string, unknown>>(() => {}),
    })
    expect(outcome).toEqual({ attempts: 3, codes: [4408, 4408, 4408] })
  })
})

describe('message size (WS_MAX_MESSAGE_BYTES, default 64 KiB)', () => {
  /** A ping of exactly `bytes` bytes. */
  const pingOf = (bytes: number) => {
    const frame = (pad: string) => JSON.stringify({ type: 'ping', payload: { pad } })
    return frame('x'.repeat(bytes - frame('').length))
  }

  it('takes a message of exactly the limit and closes the socket on a bigger one with 1009', async () => {
    const socket = await mustConnect(server.wsUrl, service)
    const largest = pingOf(MAX_MESSAGE_BYTES)
    expect(Buffer.byteLength(largest)).toBe(MAX_MESSAGE_BYTES)
    socket.send(largest)
    await socket.waitFor((frame) => frame.type === 'pong')

    socket.send(pingOf(MAX_MESSAGE_BYTES + 1))
    // ws's own close, without a reason.
    expect((await socket.closed).code).toBe(1009)
  })

  it('makes the graphql-ws client give up on 1009 without retrying', async () => {
    const outcome = await attemptsUntilGivingUp(server.wsUrl, service, {
      connectionParams: { token: service, pad: 'x'.repeat(MAX_MESSAGE_BYTES) },
    })
    expect(outcome).toEqual({ attempts: 1, codes: [1009] })
  })
})

describe('client message rate (WS_MESSAGE_RATE_PER_SECOND / _BURST)', () => {
  it('takes a burst up to the limit and closes a flooding socket with 4029', async () => {
    const socket = await mustConnect(server.wsUrl, service)
    // connection_init took one token of the burst.
    for (let i = 1; i < MESSAGE_BURST; i++) socket.send({ type: 'ping', payload: { i } })
    await socket.waitFor(
      (frame) =>
        frame.type === 'pong' &&
        (frame.payload as { i?: number } | undefined)?.i === MESSAGE_BURST - 1,
    )
    expect(socket.frames.filter((frame) => frame.type === 'pong')).toHaveLength(MESSAGE_BURST - 1)

    for (let i = 0; i < MESSAGE_BURST; i++) socket.send({ type: 'ping' })
    expect(await socket.closed).toEqual({ code: 4029, reason: 'Too many messages' })
  })
})

describe('WebSocket Origin check (ALLOWED_ORIGINS)', () => {
  /** Opens a socket with `origin` (none when undefined): `open`, or the HTTP status it got. */
  const upgrade = (origin: string | undefined) =>
    new Promise<number | 'open'>((resolve, reject) => {
      const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', {
        ...(origin === undefined ? {} : { origin }),
      })
      socket.once('open', () => {
        socket.close(1000)
        resolve('open')
      })
      socket.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0)
        response.resume()
        socket.terminate()
      })
      socket.once('error', reject)
    })

  it('refuses a browser Origin not allowed at the upgrade with 403', async () => {
    expect(await upgrade(EVIL)).toBe(403)
    expect(await upgrade('http://localhost:5173')).toBe(403)
  })

  it('accepts an allowed Origin, the instance’s own, and none at all', async () => {
    expect(await upgrade(APP)).toBe('open')
    expect(await upgrade(server.origin)).toBe('open')
    expect(await upgrade(undefined)).toBe('open')
  })
})

describe('connections per instance (MAX_CONNECTIONS)', () => {
  it('closes a socket over the limit with 1013; the others keep receiving', async () => {
    // Only the control subscriber is connected now; it holds the first place.
    await expect.poll(() => health(server)).toMatchObject({ connections: 1 })
    const users = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS + 1 }, (_, i) =>
        tokenFor({ sub: `cap-${i}`, role: 'client' }),
      ),
    )
    const held: RawSocket[] = []
    for (const token of users.slice(0, MAX_CONNECTIONS - 1)) {
      held.push(await mustConnect(server.wsUrl, token))
    }
    const extra = users[MAX_CONNECTIONS - 1] as string
    expect(await tryConnect(server.wsUrl, extra)).toMatchObject({
      accepted: false,
      code: 1013,
      reason: 'Try again later: server at connection capacity',
      frames: [],
    })
    await control.expectDelivery()
    expect(await attemptsUntilGivingUp(server.wsUrl, users[MAX_CONNECTIONS] as string)).toEqual({
      attempts: 3,
      codes: [1013, 1013, 1013],
    })
    for (const socket of held) {
      socket.send({ type: 'ping' })
      await socket.waitFor((frame) => frame.type === 'pong')
    }

    // A closed socket frees its place.
    await held[0]?.close()
    await connectOnceFreed(server.wsUrl, extra)
    await expect.poll(() => health(server)).toMatchObject({ connections: MAX_CONNECTIONS })
  })
})

describe.skipIf(TEST_STACK !== 'postgres')('limits across a cluster (REDIS_URL)', () => {
  let store: TestStore
  let a: TestServer
  let b: TestServer
  let clusterControl: ControlSubscriber
  beforeAll(async () => {
    store = await makeTestStore()
    a = await startTestServer({ store, env: LIMITS })
    b = await startTestServer({ store, env: LIMITS })
    // On b, fed by messages published on a.
    clusterControl = await startControlSubscriber({
      wsUrl: b.wsUrl,
      url: a.url,
      token: await adminToken(),
      publisherToken: service,
      room: 'cluster-control',
    })
    await clusterControl.expectDelivery()
  })
  afterAll(async () => {
    await closeAll()
    await clusterControl?.dispose()
    await b?.stop()
    await a?.stop()
    await store?.remove()
  })

  it('counts connections of a user on every instance against one limit', async () => {
    const eve = await tokenFor({ sub: 'eve', role: 'client' })
    const onA = await mustConnect(a.wsUrl, eve)
    await mustConnect(a.wsUrl, eve)
    expect(await tryConnect(b.wsUrl, eve)).toMatchObject({
      accepted: false,
      code: 4029,
      reason: 'Too many connections for user:eve',
    })
    await clusterControl.expectDelivery()

    await onA.close()
    await connectOnceFreed(b.wsUrl, eve)
    expect(await tryConnect(a.wsUrl, eve)).toMatchObject({ accepted: false, code: 4029 })
    await clusterControl.expectDelivery()
  })

  it('counts connections of a tenant on every instance against one limit', async () => {
    const member = (sub: string) => tokenFor({ sub, role: 'client', scopes: ['room:ct'] })
    const onA = await mustConnect(a.wsUrl, await member('ct-1'))
    await mustConnect(a.wsUrl, await member('ct-2'))
    await mustConnect(b.wsUrl, await member('ct-3'))
    for (const target of [a, b]) {
      expect(await tryConnect(target.wsUrl, await member('ct-4'))).toMatchObject({
        accepted: false,
        code: 4029,
        reason: 'Too many connections for tenant:room:ct',
      })
    }
    await clusterControl.expectDelivery()

    await onA.close()
    await connectOnceFreed(b.wsUrl, await member('ct-4'))
    await clusterControl.expectDelivery()
  })
})
