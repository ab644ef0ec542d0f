import { print } from 'graphql'
import { type Client, createClient } from 'graphql-ws'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import {
  ParkingPositionsDocument,
  type ParkingPositionsSubscription,
  RecentEventsDocument,
} from './generated/graphql.js'
import { cursorAt } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { createLot, raiseAlert, setSpace } from './utils/parking-fixtures.js'
import { type ServerProcess, startServerProcess } from './utils/server-process.js'
import {
  postgresAvailable,
  REDIS_TEST_URL,
  redisAvailable,
  testRedisPrefix,
} from './utils/services.js'
import { makePostgresDatabase, POSTGRES_ADMIN_URL } from './utils/stores.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'

// Many instances need the shared stores whatever TEST_STACK says.
const hasServices = (await postgresAvailable(POSTGRES_ADMIN_URL)) && (await redisAvailable())

const WAIT = { timeout: 20_000, interval: 20 }
const MAX_PUBLISHES = 5_000 // per publishing run: a bound, never reached when things work

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** A graphql-ws subscriber to one lot that resumes after its last cursor on every reconnect. */
interface Follower {
  readonly client: Client
  /** Seqs received, in arrival order. */
  readonly seqs: number[]
  /** How many times the client got `connection_ack`. */
  readonly connects: number
  /** Close codes the client saw, in order. */
  readonly closeCodes: number[]
  /** The subscription failed (an `error` message or a fatal close). */
  readonly error: unknown
}

interface FollowOptions {
  readonly lotId: string
  /** Cursor to start after. */
  readonly after: string
  /** Where to (re)connect; called before every connection attempt. */
  readonly url: () => string
  /** Reconnect attempts after a close (default 0: a close ends the subscription). */
  readonly retryAttempts?: number
}

describe.skipIf(!hasServices)('three instances on one PostgreSQL and one Redis', () => {
  let database: Awaited<ReturnType<typeof makePostgresDatabase>> | undefined
  const instances: ServerProcess[] = []
  const clients: Client[] = []
  let service: string
  let admin: string
  let operator: string

  /** Instances still up (not killed or stopped by a test). */
  const down = new Set<ServerProcess>()
  const alive = () => instances.filter((instance) => !down.has(instance))

  const follow = ({ lotId, after, url, retryAttempts = 0 }: FollowOptions): Follower => {
    const seqs: number[] = []
    const closeCodes: number[] = []
    let connects = 0
    let error: unknown
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts,
      // The url function already points at a live instance: no reason to wait.
      retryWait: async () => {},
      connectionParams: { token: operator },
      onNonLazyError: () => {},
      on: {
        connected: () => {
          connects += 1
        },
        closed: (event) => {
          closeCodes.push((event as { code: number }).code)
        },
      },
    })
    clients.push(client)
    // graphql-ws sends this same payload again after a reconnect, so keeping `after` at the
    // last cursor is all a client needs to resume where it stopped.
    const payload = { query: print(ParkingPositionsDocument), variables: { lotId, after } }
    client.subscribe<ParkingPositionsSubscription>(payload, {
      next: ({ data }) => {
        if (!data) return
        seqs.push(data.parkingUpdated.seq)
        payload.variables.after = data.parkingUpdated.cursor ?? payload.variables.after
      },
      error: (err) => {
        error = err
      },
      complete: () => {},
    })
    return {
      client,
      seqs,
      closeCodes,
      get connects() {
        return connects
      },
      get error() {
        return error
      },
    }
  }

  /** The seq of the newest event of lot `lotId`'s parking channel. */
  const headOf = async (lotId: string) => {
    const { recentEvents } = await mustExecute(alive()[0]?.url ?? '', admin, RecentEventsDocument, {
      channel: `lot:${lotId}:parking`,
      last: 1,
    })
    return recentEvents[0]?.seq ?? 0
  }

  const openStreams = async (instance: ServerProcess) => {
    const response = await fetch(`${instance.origin}/health`)
    return ((await response.json()) as { subscriptions: number }).subscriptions
  }

  /**
   * Publishes alerts and space changes to `lotId` through `targets()`, round-robin,
   * `concurrency` at a time, until `stop()` (or `MAX_PUBLISHES`). `stop()` resolves with the
   * seqs the publishes returned; any failed publish fails it.
   */
  const publishUntilStopped = (
    lotId: string,
    targets: () => ServerProcess[],
    concurrency: number,
  ) => {
    const seqs: number[] = []
    let stopped = false
    let issued = 0
    const worker = async () => {
      while (!stopped && issued < MAX_PUBLISHES) {
        const i = issued
        issued += 1
        const list = targets()
        const url = (list[i % list.length] as ServerProcess).url
        seqs.push(
          await (i % 4 === 0
            ? setSpace(url, service, lotId, String(((i / 4) % 4) + 1), i % 8 ? 'OCCUPIED' : 'FREE')
            : raiseAlert(url, service, lotId, `burst ${i}`)),
        )
      }
    }
    const running = Promise.all(Array.from({ length: concurrency }, worker))
    return {
      get count() {
        return seqs.length
      },
      async stop() {
        stopped = true
        await running
        return seqs
      },
    }
  }

  beforeAll(async () => {
    database = await makePostgresDatabase()
    const env = {
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '5',
      REDIS_URL: REDIS_TEST_URL,
      REDIS_PREFIX: testRedisPrefix(),
      DRAIN_TIMEOUT_MS: '10000',
    }
    // All three start at once on the empty database: one migrates, the others wait on its lock.
    const started = await Promise.allSettled([1, 2, 3].map(() => startServerProcess({ env })))
    for (const outcome of started) {
      if (outcome.status === 'fulfilled') instances.push(outcome.value)
    }
    for (const outcome of started) if (outcome.status === 'rejected') throw outcome.reason
    service = await serviceToken()
    admin = await adminToken()
    operator = await tokenFor({
      sub: 'op-cluster',
      role: 'operator',
      scopes: ['lot:C1', 'lot:C2', 'lot:H1', 'lot:K1', 'lot:T1'],
    })
    const first = instances[0] as ServerProcess
    for (const lotId of ['C1', 'C2', 'H1', 'K1', 'T1']) await createLot(first.url, service, lotId)
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()))
  })

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()))
    await Promise.all(instances.map((instance) => instance.kill()))
    await database?.remove()
  })

  it('delivers every event to every subscriber exactly once, in seq order, whichever instance took the publish', async () => {
    const lots = ['C1', 'C2']
    const heads = new Map<string, number>()
    for (const lotId of lots) heads.set(lotId, await headOf(lotId))
    const followers = Array.from({ length: 12 }, (_, i) => {
      const lotId = lots[i % 2] as string
      const instance = instances[i % 3] as ServerProcess
      return {
        lotId,
        follower: follow({
          lotId,
          after: cursorAt([`lot:${lotId}:parking`, heads.get(lotId) as number]),
          url: () => instance.wsUrl,
        }),
      }
    })
    // Every subscription open (on the bus) before the first publish, so delivery is live.
    for (const instance of instances) await expect.poll(() => openStreams(instance), WAIT).toBe(4)

    const PUBLISHES = 240
    const published = new Map<string, number[]>(lots.map((lotId) => [lotId, []]))
    let next = 0
    const worker = async () => {
      while (next < PUBLISHES) {
        const i = next
        next += 1
        const lotId = lots[i % 2] as string
        const url = (instances[i % 3] as ServerProcess).url
        published.get(lotId)?.push(await raiseAlert(url, service, lotId, `event ${i}`))
      }
    }
    await Promise.all(Array.from({ length: 9 }, worker))
    // One last event per lot: once it arrived, anything delivered twice would have too.
    for (const lotId of lots) {
      published.get(lotId)?.push(await raiseAlert(instances[0]?.url ?? '', service, lotId, 'end'))
    }

    for (const { lotId, follower } of followers) {
      const seqs = published.get(lotId) as number[]
      const head = heads.get(lotId) as number
      expect(seqs.slice().sort((a, b) => a - b)).toEqual(range(head + 1, head + seqs.length))
      await expect.poll(() => follower.seqs.length, WAIT).toBeGreaterThanOrEqual(seqs.length)
      expect(follower.seqs).toEqual(range(head + 1, head + seqs.length))
      expect(follower.error).toBeUndefined()
    }
  })

  it('resumes on another instance with the cursor from the previous one, missing nothing', async () => {
    const lotId = 'H1'
    const start = await headOf(lotId)
    const HOPS = 6
    const EVENTS_PER_HOP = 25
    const publishing = publishUntilStopped(lotId, alive, 6)
    const segments: number[][] = []
    let cursor = cursorAt([`lot:${lotId}:parking`, start])
    for (let hop = 0; hop < HOPS; hop += 1) {
      const instance = instances[hop % 3] as ServerProcess
      const sub = subscribeOnce(instance, lotId, cursor)
      await expect.poll(() => sub.seqs.length, WAIT).toBeGreaterThanOrEqual(EVENTS_PER_HOP)
      // A real disconnect: the socket closes, and the next instance only has the cursor.
      await sub.client.dispose()
      segments.push(sub.seqs.slice())
      cursor = sub.cursor
    }
    await publishing.stop()
    const head = await headOf(lotId)
    const last = subscribeOnce(instances[0] as ServerProcess, lotId, cursor)
    const seen = segments.flat().length
    await expect.poll(() => last.seqs.length, WAIT).toBeGreaterThanOrEqual(head - start - seen)
    segments.push(last.seqs)

    expect(segments).toHaveLength(HOPS + 1)
    expect(segments.flat()).toEqual(range(start + 1, head))
    for (let i = 1; i < segments.length; i += 1) {
      if (segments[i]?.length) expect(segments[i]?.[0]).toBe((segments[i - 1]?.at(-1) ?? 0) + 1)
    }
  })

  it('moves the subscribers of a SIGKILLed instance to the others with no gap and no duplicate', async () => {
    const lotId = 'K1'
    const victim = instances[2] as ServerProcess
    const start = await headOf(lotId)
    const survivors = () => alive().filter((instance) => instance !== victim)
    let turn = 0
    const followers = Array.from({ length: 6 }, () =>
      follow({
        lotId,
        after: cursorAt([`lot:${lotId}:parking`, start]),
        // The first connection goes to the victim; reconnects to the survivors, in turn.
        url: () => {
          if (!down.has(victim)) return victim.wsUrl
          turn += 1
          const list = survivors()
          return (list[turn % list.length] as ServerProcess).wsUrl
        },
        retryAttempts: 5,
      }),
    )
    await expect.poll(() => openStreams(victim), WAIT).toBe(6)
    const publishing = publishUntilStopped(lotId, survivors, 6)
    for (const follower of followers) {
      await expect.poll(() => follower.seqs.length, WAIT).toBeGreaterThanOrEqual(20)
    }

    down.add(victim)
    const exit = await victim.kill()
    expect(exit.signal).toBe('SIGKILL')
    const atKill = followers.map((follower) => follower.seqs.length)
    for (const [i, follower] of followers.entries()) {
      await expect.poll(() => follower.connects, WAIT).toBe(2)
      await expect
        .poll(() => follower.seqs.length, WAIT)
        .toBeGreaterThanOrEqual((atKill[i] as number) + 20)
    }
    expect(publishing.count).toBeGreaterThan(0)
    await publishing.stop()
    const head = await headOf(lotId)

    for (const follower of followers) {
      await expect.poll(() => follower.seqs.length, WAIT).toBeGreaterThanOrEqual(head - start)
      expect(follower.seqs).toEqual(range(start + 1, head))
      expect(follower.closeCodes).toEqual([1006])
      expect(follower.error).toBeUndefined()
    }
  })

  it('drains on SIGTERM: its subscribers get 1001 and resume on the other instance; it exits 0', async () => {
    const lotId = 'T1'
    const [stay, leaving] = alive() as [ServerProcess, ServerProcess]
    const start = await headOf(lotId)
    const followers = Array.from({ length: 4 }, () =>
      follow({
        lotId,
        after: cursorAt([`lot:${lotId}:parking`, start]),
        url: () => (down.has(leaving) ? stay.wsUrl : leaving.wsUrl),
        retryAttempts: 5,
      }),
    )
    await expect.poll(() => openStreams(leaving), WAIT).toBe(4)
    const publishing = publishUntilStopped(lotId, () => [stay], 4)
    for (const follower of followers) {
      await expect.poll(() => follower.seqs.length, WAIT).toBeGreaterThanOrEqual(10)
    }

    down.add(leaving)
    const exit = await leaving.stop()
    expect(exit).toMatchObject({ code: 0, signal: null })
    for (const follower of followers) {
      await expect.poll(() => follower.connects, WAIT).toBe(2)
      const resumedAt = follower.seqs.length
      await expect.poll(() => follower.seqs.length, WAIT).toBeGreaterThanOrEqual(resumedAt + 10)
    }
    await publishing.stop()
    const head = await headOf(lotId)
    for (const follower of followers) {
      await expect.poll(() => follower.seqs.length, WAIT).toBeGreaterThanOrEqual(head - start)
      expect(follower.seqs).toEqual(range(start + 1, head))
      expect(follower.closeCodes).toEqual([1001])
    }
  })

  /** A subscription on `instance` alone (no reconnect), recording seqs and the last cursor. */
  function subscribeOnce(instance: ServerProcess, lotId: string, after: string) {
    const client = createClient({
      url: instance.wsUrl,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { token: operator },
      onNonLazyError: () => {},
    })
    clients.push(client)
    const state = { client, seqs: [] as number[], cursor: after }
    client.subscribe<ParkingPositionsSubscription>(
      { query: print(ParkingPositionsDocument), variables: { lotId, after } },
      {
        next: ({ data }) => {
          if (!data) return
          state.seqs.push(data.parkingUpdated.seq)
          state.cursor = data.parkingUpdated.cursor ?? state.cursor
        },
        error: () => {},
        complete: () => {},
      },
    )
    return state
  }
})
