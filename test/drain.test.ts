import { connect, type Socket } from 'node:net'
import type { Client } from 'graphql-ws'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ParkingPositionsDocument } from './generated/graphql.js'
import { createLot, probeUntilLive, raiseAlert, setSpace } from './utils/parking-fixtures.js'
import { type ServerProcess, startServerProcess } from './utils/server-process.js'
import {
  postgresAvailable,
  REDIS_TEST_URL,
  redisAvailable,
  testRedisPrefix,
} from './utils/services.js'
import { makePostgresDatabase, POSTGRES_ADMIN_URL, TEST_STACK } from './utils/stores.js'
import { serviceToken } from './utils/tokens.js'
import { within } from './utils/within.js'
import { connectClient, nextClose, subscribe } from './utils/ws-client.js'

// A publish is held in flight by a row lock the test takes, which needs PostgreSQL; the bus
// follows the stack (Redis under TEST_STACK=postgres, in process otherwise).
const hasServices =
  (await postgresAvailable(POSTGRES_ADMIN_URL)) &&
  (TEST_STACK === 'embedded' || (await redisAvailable()))

const LOT = 'D1'
const CHANNEL = `lot:${LOT}:parking`
const WAIT = { timeout: 10_000, interval: 20 }

describe.skipIf(!hasServices)('graceful shutdown on SIGTERM', () => {
  let database: Awaited<ReturnType<typeof makePostgresDatabase>> | undefined
  let service: string
  const processes: ServerProcess[] = []
  const clients: Client[] = []
  const sockets: Socket[] = []
  const locks: pg.Client[] = []

  const start = async (drainTimeoutMs: number) => {
    const server = await startServerProcess({
      env: {
        DATABASE_URL: database?.url ?? '',
        DRAIN_TIMEOUT_MS: String(drainTimeoutMs),
        ...(TEST_STACK === 'postgres'
          ? { REDIS_URL: REDIS_TEST_URL, REDIS_PREFIX: testRedisPrefix() }
          : {}),
      },
    })
    processes.push(server)
    return server
  }

  /**
   * Holds the row lock of the lot's channel head, as a concurrent publish would: a publish to
   * the lot waits in its transaction until `release()`.
   */
  const lockChannel = async () => {
    const client = new pg.Client({ connectionString: database?.url })
    locks.push(client)
    await client.connect()
    await client.query('begin')
    await client.query('select last_seq from channels where name = $1 for update', [CHANNEL])
    return { release: () => client.query('commit') }
  }

  /** Resolves once a session of the server waits on a lock (the publish is in flight). */
  const publishBlocked = async () => {
    const admin = new pg.Client({ connectionString: database?.url })
    await admin.connect()
    try {
      await expect
        .poll(async () => {
          const { rows } = await admin.query<{ waiting: number }>(
            `select count(*)::int as waiting from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'`,
          )
          return rows[0]?.waiting
        }, WAIT)
        .toBe(1)
    } finally {
      await admin.end()
    }
  }

  /**
   * A connection that began a request (headers not finished) before the shutdown, as a load
   * balancer's kept-alive connection would be; `finish()` completes it and resolves with the
   * raw response.
   */
  const beginRequest = async (server: ServerProcess, head: string, body = '') => {
    const socket = connect(Number(new URL(server.origin).port), '127.0.0.1')
    sockets.push(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve).once('error', reject)
    })
    let response = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      response += chunk
    })
    const ended = new Promise<string>((resolve) => socket.once('close', () => resolve(response)))
    socket.write(`${head}\r\nHost: 127.0.0.1\r\n`)
    return {
      finish() {
        socket.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
        return within(ended, 5_000, 'the response to a request made while draining')
      },
    }
  }

  beforeAll(async () => {
    database = await makePostgresDatabase()
    service = await serviceToken()
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()))
    for (const socket of sockets.splice(0)) socket.destroy()
    await Promise.all(locks.splice(0).map((client) => client.end().catch(() => undefined)))
  })

  afterAll(async () => {
    await Promise.all(processes.map((server) => server.kill()))
    await database?.remove()
  })

  it('lets the publish in flight commit and answer, closes sockets with 1001, and exits 0', async () => {
    const DRAIN_TIMEOUT = 10_000 // ms
    const server = await start(DRAIN_TIMEOUT)
    await createLot(server.url, service, LOT)
    const client = connectClient(server.wsUrl, service)
    clients.push(client)
    const closed = nextClose(client)
    const sub = subscribe(client, ParkingPositionsDocument, { lotId: LOT })
    await probeUntilLive(
      () => sub.data.length,
      () => raiseAlert(server.url, service, LOT, 'probe'),
    )

    const lock = await lockChannel()
    const inFlight = setSpace(server.url, service, LOT, '1', 'OCCUPIED')
    await publishBlocked()
    const ready = await beginRequest(server, 'GET /ready HTTP/1.1\r\nConnection: close')
    const publishLate = await beginRequest(
      server,
      'POST /graphql HTTP/1.1\r\nContent-Type: application/json',
      JSON.stringify({ query: '{ __typename }' }),
    )

    const signalledAt = Date.now()
    server.signal('SIGTERM')
    await server.waitForLog((line) => line.msg === 'shutting down: draining')
    // No new connections; requests on open ones are refused, readiness says draining.
    await expect(fetch(`${server.origin}/health`)).rejects.toThrow()
    const readyResponse = await ready.finish()
    expect(readyResponse).toMatch(/^HTTP\/1\.1 503 /)
    expect(readyResponse).toContain('"draining":true')
    const refused = await publishLate.finish()
    expect(refused).toMatch(/^HTTP\/1\.1 503 /)
    expect(refused).toMatch(/connection: close/i)
    expect(refused).toContain('SHUTTING_DOWN')
    // Subscribers stay connected while the publish is held.
    const early = await Promise.race([closed, Promise.resolve(undefined)])
    expect(early).toBeUndefined()

    await lock.release()
    const seq = await inFlight
    expect(seq).toBeGreaterThan(0)
    expect((await within(closed, 5_000, 'the socket to close')).code).toBe(1001)
    const exit = await within(server.exited, DRAIN_TIMEOUT, 'the process to exit')
    expect(exit).toMatchObject({ code: 0, signal: null })
    expect(exit.at - signalledAt).toBeLessThan(DRAIN_TIMEOUT)
    expect(server.logs.map((line) => line.msg)).toContain('shut down cleanly')

    // The publish that was answered is durable.
    const check = new pg.Client({ connectionString: database?.url })
    await check.connect()
    try {
      const { rows } = await check.query(
        'select type from events where channel = $1 and seq = $2',
        [CHANNEL, seq],
      )
      expect(rows).toEqual([{ type: 'parking.spaceChanged' }])
    } finally {
      await check.end()
    }
  })

  it('exits non-zero, and says why, when the drain outlasts DRAIN_TIMEOUT_MS', async () => {
    const DRAIN_TIMEOUT = 1_000 // ms
    const server = await start(DRAIN_TIMEOUT)
    const lock = await lockChannel()
    const stuck = setSpace(server.url, service, LOT, '2', 'OCCUPIED').catch(
      (error: unknown) => error,
    )
    await publishBlocked()

    const signalledAt = Date.now()
    server.signal('SIGTERM')
    const exit = await within(server.exited, DRAIN_TIMEOUT + 5_000, 'the process to exit')
    expect(exit.code).toBe(1)
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(DRAIN_TIMEOUT - 50)
    expect(server.logs.map((line) => line.msg)).toContain(
      'drain timed out; exiting with work still in flight',
    )
    expect(await stuck).toBeInstanceOf(Error)
    await lock.release()
  })
})
