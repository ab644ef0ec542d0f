import { readFile } from 'node:fs/promises'
import type { Client } from 'graphql-ws'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { channelName } from '../src/events/channels.js'
import {
  createNotifyIngester,
  INGEST_APPLICATION_NAME,
  INGEST_LOCK_KEY,
} from '../src/ingest/notify-ingester.js'
import { createLogger } from '../src/ops/logger.js'
import { ParkingUpdatedDocument, type ParkingUpdatedSubscription } from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'
import { createLot } from './utils/parking-fixtures.js'
import { type LogLine, type ServerProcess, startServerProcess } from './utils/server-process.js'
import { REDIS_TEST_URL, redisAvailable, testRedisPrefix } from './utils/services.js'
import { makePostgresDatabase, POSTGRES_ADMIN_URL } from './utils/stores.js'
import { serviceToken, TEST_SECRET, tokenFor } from './utils/tokens.js'
import { connectClient, type Subscription, subscribe } from './utils/ws-client.js'

const TRIGGER_SQL = new URL('../docs/notify-trigger.example.sql', import.meta.url)
const NOTIFY_CHANNELS = 'spaces_changed=setSpaceState'
const LOT = 'N1'
const SPACES = ['A-1', 'A-2', 'A-3', 'A-4', 'A-5', 'A-6']
const INGESTING = 'ingesting PostgreSQL NOTIFY on this instance'
const TAKEOVER_BOUND = 5_000 // ms: the holder's successor must listen within this

/** Whether the machine's PostgreSQL answers; under `CI=true` a missing one fails the suite. */
async function postgresAvailable(): Promise<boolean> {
  const probe = new pg.Client({
    connectionString: POSTGRES_ADMIN_URL,
    connectionTimeoutMillis: 3_000,
  })
  try {
    await probe.connect()
    return true
  } catch (error) {
    if (process.env['CI'] === 'true')
      throw new Error(`PostgreSQL at ${POSTGRES_ADMIN_URL} is required under CI: ${String(error)}`)
    console.warn(
      `skipping NOTIFY ingestion tests: no PostgreSQL at ${POSTGRES_ADMIN_URL} (${String(error)})`,
    )
    return false
  } finally {
    await probe.end().catch(() => undefined)
  }
}

const hasPostgres = await postgresAvailable()
const hasRedis = hasPostgres && (await redisAvailable())

/**
 * The session holding the ingest lock, once it is listening: its last statement is the
 * LISTEN and it is idle, so a NOTIFY sent now reaches it. `notPid` waits for a successor.
 */
async function waitForListener(db: pg.Client, notPid?: number): Promise<number> {
  return vi.waitFor(
    async () => {
      const { rows } = await db.query<{ pid: number; state: string; query: string }>(
        `select a.pid, a.state, a.query, a.application_name
           from pg_locks l join pg_stat_activity a using (pid)
          where l.locktype = 'advisory' and l.granted and l.objid = $1::oid
            and l.database = (select oid from pg_database where datname = current_database())`,
        [INGEST_LOCK_KEY],
      )
      expect(rows).toHaveLength(1)
      const [holder] = rows
      if (!holder || holder.pid === notPid) throw new Error('no new lock holder yet')
      expect(holder).toMatchObject({ state: 'idle', query: expect.stringMatching(/^listen /) })
      return holder.pid
    },
    { timeout: 10_000, interval: 25 },
  )
}

describe('NOTIFY_CHANNELS start-up checks', () => {
  const build = (channels: string) =>
    buildApp(
      loadConfig({
        JWT_SECRET: TEST_SECRET,
        DATABASE_URL: 'postgres://127.0.0.1:1/never-opened',
        NOTIFY_CHANNELS: channels,
      }),
      createLogger('silent'),
    )

  it('refuses an unknown mutation, naming the mapping, before opening anything', async () => {
    await expect(build('spaces_changed=setSpace')).rejects.toThrow(ConfigError)
    await expect(build('spaces_changed=setSpace')).rejects.toThrow(
      'NOTIFY_CHANNELS: spaces_changed=setSpace: there is no mutation "setSpace"',
    )
  })

  it('refuses a mutation that is not a publish with a single input argument', async () => {
    for (const mutation of ['markNotificationRead', 'markAllNotificationsRead']) {
      await expect(build(`inbox=${mutation}`)).rejects.toThrow(
        `"${mutation}" is not a publish mutation taking its data in one "input" argument`,
      )
    }
  })
})

describe.skipIf(!hasRedis)('PostgreSQL NOTIFY ingestion across three server processes', () => {
  let database: Awaited<ReturnType<typeof makePostgresDatabase>>
  /** Another application's connection: plain SQL, knows nothing of Switchboard. */
  let otherApp: pg.Client
  let servers: ServerProcess[] = []
  let client: Client
  let sub: Subscription<ParkingUpdatedSubscription>
  let updates = 0
  let sentinelState = 'free'

  const spaceEvents = () =>
    sub.data.map((d) => d.parkingUpdated).filter((e) => e.__typename === 'SpaceStateChanged')
  const loggedEvents = async () => {
    const { rows } = await otherApp.query<{ n: number }>(
      `select count(*)::int as n from events where channel = $1 and type = 'parking.spaceChanged'`,
      [channelName({ kind: 'lotParking', lotId: LOT })],
    )
    return rows[0]?.n ?? 0
  }
  const update = async (spaceNumber: string, state: string, plate: string | null = null) => {
    await otherApp.query(
      'update spaces set state = $3, plate = $4 where lot_id = $1 and number = $2',
      [LOT, spaceNumber, state, plate],
    )
    updates += 1
  }
  /** Every UPDATE so far arrived once: the subscriber saw exactly `updates` space events. */
  const expectExactlyOnce = async () => {
    await vi.waitFor(() => expect(spaceEvents().length).toBeGreaterThanOrEqual(updates), {
      timeout: 10_000,
    })
    // One more, ingested after every earlier one: a duplicate of those would be in by now.
    sentinelState = sentinelState === 'free' ? 'reserved' : 'free'
    await update('A-6', sentinelState)
    await vi.waitFor(() => expect(spaceEvents().length).toBeGreaterThanOrEqual(updates), {
      timeout: 10_000,
    })
    expect(spaceEvents()).toHaveLength(updates)
    expect(await loggedEvents()).toBe(updates)
  }
  const tookOver = (line: LogLine) => line.msg === INGESTING

  beforeAll(async () => {
    database = await makePostgresDatabase()
    otherApp = new pg.Client({ connectionString: database.url })
    await otherApp.connect()
    await otherApp.query(await readFile(TRIGGER_SQL, 'utf8'))
    await otherApp.query('insert into spaces (lot_id, number) select $1, unnest($2::text[])', [
      LOT,
      SPACES,
    ])
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: REDIS_TEST_URL,
      REDIS_PREFIX: testRedisPrefix(),
      NOTIFY_CHANNELS,
    }
    // Started alone, the first process takes the lock; the others wait for it.
    servers = [await startServerProcess({ env })]
    servers.push(...(await Promise.all([1, 2].map(() => startServerProcess({ env })))))
    const subscriberServer = servers[1]
    if (!subscriberServer) throw new Error('no second server')
    await createLot(subscriberServer.url, await serviceToken(), LOT, SPACES)
    const operator = await tokenFor({ sub: 'op', role: 'operator', scopes: [`lot:${LOT}`] })
    client = connectClient(subscriberServer.wsUrl, operator)
    sub = subscribe(client, ParkingUpdatedDocument, {
      lotId: LOT,
      after: fromStart({ kind: 'lotParking', lotId: LOT }),
    })
  }, 120_000)

  afterAll(async () => {
    await client?.dispose()
    await Promise.all(servers.map((server) => server.stop()))
    await otherApp?.end()
    await database?.remove()
  })

  it('turns a row updated by another app into a SpaceStateChanged event for subscribers', async () => {
    await servers[0]?.waitForLog(tookOver)
    await waitForListener(otherApp)
    await update('A-1', 'occupied', 'AB-123')
    await vi.waitFor(() => expect(spaceEvents()).toHaveLength(1), { timeout: 10_000 })
    expect(spaceEvents()[0]).toMatchObject({
      __typename: 'SpaceStateChanged',
      lotId: LOT,
      spaceNumber: 'A-1',
      previousState: 'FREE',
      state: 'OCCUPIED',
      vehiclePlate: 'AB-123',
    })
  })

  it('makes each notification exactly one event while three processes contend for the lock', async () => {
    await waitForListener(otherApp)
    expect(servers.filter((server) => server.logs.some(tookOver))).toHaveLength(1)
    const states = ['occupied', 'reserved', 'free']
    for (let i = 0; i < 12; i += 1) {
      await update(SPACES[i % 5] ?? 'A-1', states[i % 3] ?? 'free', `P-${i}`)
    }
    await expectExactlyOnce()
    // In commit order, with a gap-free sequence.
    const events = spaceEvents()
    expect(events.slice(1, 13).map((e) => e.vehiclePlate)).toEqual(
      Array.from({ length: 12 }, (_, i) => `P-${i}`),
    )
    const seqs = events.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  })

  it('skips malformed payloads with a warning naming channel and code, and keeps ingesting', async () => {
    await waitForListener(otherApp)
    const before = await loggedEvents()
    const bad = [
      'not json',
      JSON.stringify({ lotId: LOT }),
      JSON.stringify({ lotId: LOT, spaceNumber: 'Z-9', state: 'FREE' }),
    ]
    for (const payload of bad) {
      await otherApp.query(`select pg_notify('spaces_changed', $1)`, [payload])
    }
    await update('A-2', 'out_of_service')
    await vi.waitFor(() => expect(spaceEvents().at(-1)).toMatchObject({ spaceNumber: 'A-2' }), {
      timeout: 10_000,
    })
    expect(await loggedEvents()).toBe(before + 1)
    const warnings = servers
      .flatMap((server) => server.logs)
      .filter((line) => line.msg === 'NOTIFY payload skipped')
    expect(warnings.map((line) => [line['level'], line['channel'], line['code']])).toEqual([
      [40, 'spaces_changed', 'BAD_USER_INPUT'],
      [40, 'spaces_changed', 'BAD_USER_INPUT'],
      [40, 'spaces_changed', 'NOT_FOUND'],
    ])
    await expectExactlyOnce()
  })

  it('hands ingestion to another process within seconds when the holder is killed', async () => {
    const [holder, ...rest] = servers
    if (!holder) throw new Error('no holder')
    const holderSession = await waitForListener(otherApp)
    await holder.kill()
    const killedAt = Date.now()
    await Promise.race(rest.map((server) => server.waitForLog(tookOver, TAKEOVER_BOUND)))
    await waitForListener(otherApp, holderSession)
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_BOUND)
    for (const space of SPACES.slice(0, 4)) await update(space, 'reserved', 'AFTER-KILL')
    await expectExactlyOnce()
  })

  it('resumes after the listener connection drops', async () => {
    const holderSession = await waitForListener(otherApp)
    await otherApp.query('select pg_terminate_backend($1)', [holderSession])
    await waitForListener(otherApp, holderSession)
    expect(servers.flatMap((server) => server.logs).map((line) => line.msg)).toContain(
      'NOTIFY listener connection lost; reconnecting',
    )
    for (const space of SPACES.slice(0, 3)) await update(space, 'free', 'AFTER-DROP')
    await expectExactlyOnce()
  })
})

describe.skipIf(!hasPostgres)('notify ingester (module)', () => {
  it('retries every retryMs: a waiting ingester takes over as soon as the holder stops', async () => {
    const database = await makePostgresDatabase()
    const received: string[] = []
    const make = (name: string) =>
      createNotifyIngester({
        connectionString: database.url,
        channels: ['probe'],
        executePublish: async (_channel, payload) => {
          received.push(`${name}:${payload}`)
        },
        logger: createLogger('silent'),
        retryMs: 50,
      })
    const a = make('a')
    const b = make('b')
    const db = new pg.Client({ connectionString: database.url })
    try {
      await db.connect()
      await a.start()
      await b.start()
      expect([a.ingesting(), b.ingesting()]).toEqual([true, false])
      const holder = await waitForListener(db)
      await db.query(`select pg_notify('probe', 'one')`)
      await vi.waitFor(() => expect(received).toEqual(['a:one']))

      await a.stop()
      const stoppedAt = Date.now()
      await waitForListener(db, holder)
      expect(Date.now() - stoppedAt).toBeLessThan(1_000)
      expect(b.ingesting()).toBe(true)
      await db.query(`select pg_notify('probe', 'two')`)
      await vi.waitFor(() => expect(received).toEqual(['a:one', 'b:two']))
      const [app] = (
        await db.query<{ application_name: string }>(
          'select application_name from pg_stat_activity where application_name = $1',
          [INGEST_APPLICATION_NAME],
        )
      ).rows
      expect(app?.application_name).toBe(INGEST_APPLICATION_NAME)
    } finally {
      await Promise.all([a.stop(), b.stop()])
      await db.end()
      await database.remove()
    }
  })
})
