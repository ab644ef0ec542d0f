import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { channelName } from '../src/events/channels.js'
import { SendRoomMessageDocument } from './generated/graphql.js'
import { errorCode, request } from './utils/http-raw.js'
import { runConcurrently } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { postgresAvailable } from './utils/services.js'
import { makePostgresDatabase, POSTGRES_ADMIN_URL } from './utils/stores.js'
import { startTcpProxy, type TcpProxy } from './utils/tcp-proxy.js'
import { serviceToken } from './utils/tokens.js'

// Switchboard reaches its own PostgreSQL database only through a TCP proxy this file cuts and
// refuses at will; the machine's PostgreSQL itself is never touched.

const hasPostgres = await postgresAvailable(POSTGRES_ADMIN_URL)

// A publish against an unreachable database must answer well within this; it does in
// milliseconds when connections are refused or reset (the pool's connect timeout, 10 s, only
// bounds a silent network).
const PROMPT_FAILURE = 3_000 // ms
const ROOM = 'faults'
const CHANNEL = channelName({ kind: 'room', room: ROOM })

interface Outcome {
  readonly body: string
  /** The acknowledged seq, when the publish succeeded. */
  readonly seq?: number
  /** `extensions.code` when it failed (`UNEXPECTED` if the error had none). */
  readonly code?: string
  readonly ms: number
}

describe.skipIf(!hasPostgres)('PostgreSQL connection drops', () => {
  let database: Awaited<ReturnType<typeof makePostgresDatabase>> | undefined
  let proxy: TcpProxy | undefined
  let server: TestServer | undefined
  let service: string
  const outcomes: Outcome[] = []
  let sent = 0

  const publish = async (label: string): Promise<Outcome> => {
    const body = `${label}-${sent++}`
    const started = Date.now()
    const { result, text } = await request(server?.url ?? '', service, SendRoomMessageDocument, {
      input: { room: ROOM, body },
    })
    const ms = Date.now() - started
    // What a client sees of a failure must not name the database, its address or pg's error.
    expect(text).not.toMatch(/ECONN|terminated|5432|127\.0\.0\.1|postgres/i)
    const outcome: Outcome = result.data?.sendRoomMessage
      ? { body, seq: result.data.sendRoomMessage.seq, ms }
      : { body, code: String(errorCode(result) ?? 'UNEXPECTED'), ms }
    outcomes.push(outcome)
    return outcome
  }
  const acknowledged = () => outcomes.filter((outcome) => outcome.seq !== undefined)
  const statusOf = async (path: string) =>
    (await fetch(`${server?.origin ?? ''}${path}`, { cache: 'no-store' })).status

  beforeAll(async () => {
    database = await makePostgresDatabase()
    const direct = new URL(database.url)
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) })
    const proxied = new URL(database.url)
    proxied.hostname = proxy.host
    proxied.port = String(proxy.port)
    server = await startTestServer({
      store: { env: { DATABASE_URL: proxied.toString() }, remove: async () => {} },
      env: { DATABASE_POOL_SIZE: '4' },
    })
    service = await serviceToken()
  })

  afterAll(async () => {
    // The proxy may be refusing: let the pool's last queries through so stop() is quick.
    proxy?.accept()
    await server?.stop()
    await proxy?.close()
    await database?.remove()
  })

  it('publishes through the proxy while the connection is up', async () => {
    for (let i = 0; i < 5; i++) expect(await publish('before')).toMatchObject({ seq: i + 1 })
    expect(proxy?.connections).toBeGreaterThan(0)
    expect(await statusOf('/ready')).toBe(200)
  })

  it('fails publishes promptly with DATABASE_UNAVAILABLE, and turns /ready 503, while PostgreSQL is unreachable', async () => {
    proxy?.refuse()
    proxy?.cut()
    const failures = await runConcurrently(8, 4, () => publish('unreachable'))
    for (const failure of failures) {
      expect(failure).toMatchObject({ code: 'DATABASE_UNAVAILABLE' })
      expect(failure.ms).toBeLessThan(PROMPT_FAILURE)
    }
    await expect.poll(() => statusOf('/ready'), { timeout: 5_000 }).toBe(503)
    expect(await statusOf('/health')).toBe(200)
  })

  it('recovers once PostgreSQL is reachable again, with no seq taken by the failed publishes', async () => {
    proxy?.accept()
    await expect.poll(() => statusOf('/ready'), { timeout: 10_000 }).toBe(200)
    const last = acknowledged().at(-1)?.seq ?? 0
    for (let i = 1; i <= 5; i++) expect(await publish('after')).toMatchObject({ seq: last + i })
  })

  it('keeps every acknowledged publish when connections are cut in the middle of traffic', async () => {
    let running = true
    const traffic = runConcurrently(4, 4, async () => {
      while (running) await publish('traffic')
    })
    const ackedSoFar = () => acknowledged().length
    const failedSoFar = () => outcomes.filter((outcome) => outcome.code !== undefined).length
    try {
      // Cuts while statements and commits are in flight; new connections are let through.
      for (let round = 0; round < 3; round++) {
        const target = ackedSoFar() + 20
        await expect.poll(ackedSoFar, { timeout: 10_000 }).toBeGreaterThanOrEqual(target)
        proxy?.cut()
      }
      // An outage in the middle of traffic, then recovery.
      const failuresBefore = failedSoFar()
      proxy?.refuse()
      proxy?.cut()
      await expect.poll(failedSoFar, { timeout: 10_000 }).toBeGreaterThanOrEqual(failuresBefore + 8)
      proxy?.accept()
      const target = ackedSoFar() + 20
      await expect.poll(ackedSoFar, { timeout: 10_000 }).toBeGreaterThanOrEqual(target)
    } finally {
      running = false
      await traffic
    }

    // Every failure was the expected, prompt one: none masked as unexpected, none hanging.
    const failures = outcomes.filter((outcome) => outcome.code !== undefined)
    expect(failures.length).toBeGreaterThan(0)
    expect(new Set(failures.map((failure) => failure.code))).toEqual(
      new Set(['DATABASE_UNAVAILABLE']),
    )
    expect(Math.max(...outcomes.map((outcome) => outcome.ms))).toBeLessThan(PROMPT_FAILURE)

    // Read the log straight from PostgreSQL, not through the proxy.
    const reader = new pg.Client({ connectionString: database?.url })
    await reader.connect()
    const { rows } = await reader
      .query<{ seq: string; body: string }>(
        "select seq, data->>'body' as body from events where channel = $1 order by seq",
        [CHANNEL],
      )
      .finally(() => reader.end())
    const log = rows.map((row) => ({ seq: Number(row.seq), body: row.body }))

    // Nothing acknowledged is lost: each acknowledged seq holds the message it acknowledged.
    const bySeq = new Map(log.map((entry) => [entry.seq, entry.body]))
    const acked = acknowledged()
    expect(acked.length).toBeGreaterThan(70)
    expect(acked.filter((outcome) => bySeq.get(outcome.seq ?? -1) !== outcome.body)).toEqual([])
    // The log itself stayed whole: gap-free, and each message appended at most once. A failed
    // publish may still be there (its commit landed but the answer was cut), never twice.
    expect(log.map((entry) => entry.seq)).toEqual(log.map((_, i) => i + 1))
    expect(new Set(log.map((entry) => entry.body)).size).toBe(log.length)
    const attempted = new Set(outcomes.map((outcome) => outcome.body))
    expect(log.filter((entry) => !attempted.has(entry.body))).toEqual([])
  })
})
