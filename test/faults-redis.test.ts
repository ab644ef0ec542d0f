import type { Client } from 'graphql-ws'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { BusMessage } from '../src/events/bus.js'
import { createRedisBus } from '../src/events/redis-bus.js'
import {
  RoomMessageDocument,
  type RoomMessageSubscription,
  SendRoomMessageDocument,
} from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { runConcurrently } from './utils/parking-fixtures.js'
import {
  type RedisProcess,
  redisServerUnavailableReason,
  startRedisProcess,
} from './utils/redis-process.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { postgresAvailable, testRedisPrefix } from './utils/services.js'
import { makePostgresDatabase, POSTGRES_ADMIN_URL } from './utils/stores.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, type Subscription, subscribe } from './utils/ws-client.js'

// Every test here runs against a redis-server child process of its own, killed and restarted
// at will; the machine's shared Redis is never touched.

const redisServerMissing = redisServerUnavailableReason()
if (redisServerMissing) console.warn(`skipping Redis fault tests: ${redisServerMissing}`)
const hasPostgres = await postgresAvailable(POSTGRES_ADMIN_URL)

const ROOM = 'outage'
const OUTAGE_PUBLISHES = 600

let redis: RedisProcess | undefined

beforeAll(async () => {
  if (!redisServerMissing) redis = await startRedisProcess()
})

afterAll(async () => {
  await redis?.kill()
})

describe.skipIf(redisServerMissing !== undefined)('redis bus: publisher outage', () => {
  it('has a publisher that reconnects tell the channels it failed to publish on to resync', async () => {
    const url = redis?.url ?? ''
    const publisher = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    })
    const subscriber = new Redis(url, { lazyConnect: true })
    await Promise.all([publisher.connect(), subscriber.connect()])
    const bus = createRedisBus({ publisher, subscriber, prefix: testRedisPrefix() })
    try {
      const onLost: BusMessage[] = []
      const onFine: BusMessage[] = []
      const stopLost = await bus.subscribe('room:lost', (message) => onLost.push(message))
      const stopFine = await bus.subscribe('room:fine', (message) => onFine.push(message))
      // Only this publisher loses Redis; the subscriber (on every instance) stays connected,
      // so nothing else would ever tell it that a message went missing.
      const ended = new Promise((resolve) => publisher.once('end', resolve))
      publisher.disconnect()
      await ended
      await expect(bus.publish('room:lost', { kind: 'changed' })).rejects.toThrow()
      await publisher.connect()
      await expect.poll(() => onLost, { timeout: 5_000 }).toEqual([{ kind: 'resync' }])
      await bus.publish('room:fine', { kind: 'changed' })
      await expect.poll(() => onFine).toEqual([{ kind: 'changed' }])
      expect(onLost).toEqual([{ kind: 'resync' }])
      stopLost()
      stopFine()
    } finally {
      await bus.close()
      publisher.disconnect()
      subscriber.disconnect()
    }
  })
})

describe.skipIf(redisServerMissing !== undefined || !hasPostgres)(
  'Redis stops and comes back',
  () => {
    let database: Awaited<ReturnType<typeof makePostgresDatabase>> | undefined
    let server: TestServer | undefined
    let service: string
    /** The app's PUBLISH connection, caught as it connects, to look at its queues. */
    let appPublisher: Redis
    const clients: Client[] = []
    let connects = 0
    const subs: Array<Subscription<RoomMessageSubscription>> = []
    const acknowledged: Array<{ seq: number; body: string }> = []

    const statusOf = async (path: string) => (await fetch(`${server?.origin ?? ''}${path}`)).status
    const publish = async (body: string) => {
      const { sendRoomMessage } = await mustExecute(
        server?.url ?? '',
        service,
        SendRoomMessageDocument,
        {
          input: { room: ROOM, body },
        },
      )
      acknowledged.push({ seq: sendRoomMessage.seq, body })
    }
    const seqsOf = (sub: Subscription<RoomMessageSubscription>) =>
      sub.data.map((data) => data.roomMessage.seq)

    beforeAll(async () => {
      database = await makePostgresDatabase()
      const connectSpy = vi.spyOn(Redis.prototype, 'connect')
      try {
        server = await startTestServer({
          store: {
            env: {
              DATABASE_URL: database.url,
              REDIS_URL: redis?.url ?? '',
              REDIS_PREFIX: testRedisPrefix(),
            },
            remove: async () => {},
          },
        })
        // `connect` is called on each client the app makes; its `this` is that client.
        const publisher = (connectSpy.mock.contexts as Redis[]).find(
          (client) => client.options.enableOfflineQueue === false,
        )
        if (!publisher) throw new Error('the app connected no Redis publisher')
        appPublisher = publisher
      } finally {
        connectSpy.mockRestore()
      }
      service = await serviceToken()
      const member = await tokenFor({ sub: 'member', role: 'client', scopes: [`room:${ROOM}`] })
      for (let i = 0; i < 2; i++) {
        const client = connectClient(server.wsUrl, member)
        client.on('connected', () => {
          connects += 1
        })
        clients.push(client)
        subs.push(
          subscribe(client, RoomMessageDocument, {
            room: ROOM,
            after: fromStart({ kind: 'room', room: ROOM }),
          }),
        )
      }
    })

    afterAll(async () => {
      for (const client of clients) await client.dispose()
      await server?.stop()
      await database?.remove()
    })

    it('delivers over the throwaway Redis while it runs', async () => {
      for (let i = 1; i <= 3; i++) await publish(`before-${i}`)
      for (const sub of subs) await sub.waitForCount(3)
      expect(subs.map(seqsOf)).toEqual([
        [1, 2, 3],
        [1, 2, 3],
      ])
      expect(await statusOf('/ready')).toBe(200)
    })

    it('while Redis is down: /ready is 503, /health 200, and publishes succeed without queueing for Redis', async () => {
      await redis?.kill()
      await expect.poll(() => statusOf('/ready'), { timeout: 5_000 }).toBe(503)
      expect(await statusOf('/health')).toBe(200)

      await runConcurrently(OUTAGE_PUBLISHES, 32, (i) => publish(`outage-${i}`))
      expect(acknowledged).toHaveLength(3 + OUTAGE_PUBLISHES)
      // Every publish above was made with Redis unreachable, and none of them waits in the
      // publisher's queues for it to come back (enableOfflineQueue: false): memory stays flat
      // however long the outage. `offlineQueue` is private in ioredis' types, hence the cast.
      expect(appPublisher.status).not.toBe('ready')
      const { offlineQueue } = appPublisher as unknown as { offlineQueue: { length: number } }
      expect(offlineQueue.length).toBe(0)
      expect(appPublisher.commandQueue.length).toBe(0)
      // Without a bus nothing reached the subscribers yet (late, not never: see the next test).
      expect(subs.map((sub) => sub.data.length)).toEqual([3, 3])
      expect(await statusOf('/ready')).toBe(503)
    }, 90_000)

    it('once Redis is back: /ready is 200 and the subscribers that stayed connected get the missed events in order, once', async () => {
      await redis?.restart()
      await expect.poll(() => statusOf('/ready'), { timeout: 10_000 }).toBe(200)
      for (let i = 1; i <= 2; i++) await publish(`after-${i}`)
      const total = 3 + OUTAGE_PUBLISHES + 2
      for (const sub of subs) await sub.waitForCount(total, 20_000)

      const expected = acknowledged.map(({ seq }) => seq).sort((a, b) => a - b)
      expect(expected).toEqual(Array.from({ length: total }, (_, i) => i + 1))
      for (const sub of subs) {
        expect(seqsOf(sub)).toEqual(expected)
        expect(sub.error).toBeUndefined()
        const bodies = new Map(
          sub.data.map(({ roomMessage }) => [roomMessage.seq, roomMessage.body]),
        )
        expect(acknowledged.filter(({ seq, body }) => bodies.get(seq) !== body)).toEqual([])
      }
      // The WebSockets never dropped: the catch-up came from the server, not from a reconnect.
      expect(connects).toBe(2)
    }, 60_000)
  },
)
