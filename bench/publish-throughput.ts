/**
 * Publish throughput on real PostgreSQL: one Switchboard process (PostgreSQL + Redis bus) on
 * a fresh database, N concurrent HTTP publishers of `setSpaceState` over loopback, each run
 * bounded by time and count. Prints a markdown table: committed events/s (median of the runs)
 * and publish latency p50/p99 (all measured publishes of that row).
 *
 *   npm run bench:publish -- [--publishers 1,8,32] [--runs 3] [--duration-ms 3000]
 *                            [--max-per-run 50000] [--pool 10]
 *
 * Two channel layouts per publisher count: every publisher on one lot ("one hot channel":
 * appends serialise on that channel's head row) and one lot per publisher ("a lot each").
 */
import { Agent } from 'node:http'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { type ServerProcess, startServerProcess } from '../test/utils/server-process.js'
import {
  postgresAvailable,
  REDIS_TEST_URL,
  redisAvailable,
  testRedisPrefix,
} from '../test/utils/services.js'
import { makePostgresDatabase, POSTGRES_ADMIN_URL } from '../test/utils/stores.js'
import { serviceToken } from '../test/utils/tokens.js'
import { postGraphql } from './load/post-graphql.js'

const SPACES = 64
// One space always stays free, so occupancy never reaches the alert threshold (1.0) and each
// publish appends exactly one event.
const PUBLISHED_SPACES = SPACES - 1
const WARMUP_MS = 1_000

const SET_SPACE = `mutation ($input: SetSpaceStateInput!) { setSpaceState(input: $input) { seq } }`
const UPSERT_LOT = `mutation ($input: UpsertLotInput!) { upsertLot(input: $input) { id } }`

interface RunResult {
  readonly publishes: number
  readonly errors: number
  readonly seconds: number
  readonly latenciesMs: number[]
}

const { values: args } = parseArgs({
  options: {
    publishers: { type: 'string', default: '1,8,32' },
    runs: { type: 'string', default: '3' },
    'duration-ms': { type: 'string', default: '3000' },
    'max-per-run': { type: 'string', default: '50000' },
    pool: { type: 'string', default: '10' },
  },
})
const PUBLISHER_COUNTS = args.publishers.split(',').map(Number)
const RUNS = Number(args.runs)
const DURATION_MS = Number(args['duration-ms'])
const MAX_PER_RUN = Number(args['max-per-run'])
const POOL_SIZE = Number(args.pool)

/** `publishers` loops publishing space changes until `durationMs` or `maxPublishes`. */
async function run(
  server: ServerProcess,
  token: string,
  publishers: number,
  lotOf: (publisher: number) => string,
  durationMs: number,
  maxPublishes: number,
): Promise<RunResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: publishers })
  const latenciesMs: number[] = []
  let publishes = 0
  let errors = 0
  let issued = 0
  const startedAt = performance.now()
  const deadline = startedAt + durationMs
  const worker = async (publisher: number) => {
    for (let i = 0; performance.now() < deadline && issued < maxPublishes; i += 1) {
      issued += 1
      const input = {
        lotId: lotOf(publisher),
        spaceNumber: String(((publisher * 7 + i) % PUBLISHED_SPACES) + 1),
        state: i % 2 === 0 ? 'OCCUPIED' : 'FREE',
      }
      const sentAt = performance.now()
      const result = await postGraphql(agent, `${server.origin}/graphql`, token, SET_SPACE, {
        input,
      })
      latenciesMs.push(performance.now() - sentAt)
      if (result.errors?.length || !result.data) errors += 1
      else publishes += 1
    }
  }
  await Promise.all(Array.from({ length: publishers }, (_, i) => worker(i)))
  const seconds = (performance.now() - startedAt) / 1000
  agent.destroy()
  return { publishes, errors, seconds, latenciesMs }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

/**
 * Events ever appended to the bench lots' parking channels: the sum of their head seqs (a
 * count of rows would miss what log retention already pruned).
 */
async function committedEvents(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ events: string | null }>(
      `select sum(last_seq) as events from channels where name like 'lot:bench-%:parking'`,
    )
    return Number(rows[0]?.events ?? 0)
  } finally {
    await client.end()
  }
}

async function main(): Promise<void> {
  if (!(await postgresAvailable(POSTGRES_ADMIN_URL)) || !(await redisAvailable())) {
    throw new Error(
      'the publish benchmark needs PostgreSQL (POSTGRES_TEST_URL) and Redis (REDIS_TEST_URL)',
    )
  }
  const database = await makePostgresDatabase()
  let server: ServerProcess | undefined
  try {
    server = await startServerProcess({
      env: {
        DATABASE_URL: database.url,
        DATABASE_POOL_SIZE: String(POOL_SIZE),
        REDIS_URL: REDIS_TEST_URL,
        REDIS_PREFIX: testRedisPrefix(),
        // Measures the publish path itself: one service token publishes for every publisher,
        // far above the default per-token publish rate.
        PUBLISH_RATE_PER_SECOND: '0',
      },
    })
    const token = await serviceToken()
    const maxPublishers = Math.max(...PUBLISHER_COUNTS)
    const setup = new Agent({ keepAlive: true })
    const spaces = Array.from({ length: SPACES }, (_, i) => String(i + 1))
    for (const lotId of [
      'bench-hot',
      ...Array.from({ length: maxPublishers }, (_, i) => `bench-${i}`),
    ]) {
      const result = await postGraphql(setup, `${server.origin}/graphql`, token, UPSERT_LOT, {
        input: { lotId, name: lotId, spaces, alertThreshold: 1 },
      })
      if (result.errors?.length)
        throw new Error(`upsertLot failed: ${JSON.stringify(result.errors)}`)
    }
    setup.destroy()

    const layouts: Array<[string, (publisher: number) => string]> = [
      ['one hot channel', () => 'bench-hot'],
      ['a lot each', (publisher) => `bench-${publisher}`],
    ]
    const rows: string[] = []
    let acknowledged = 0
    const before = await committedEvents(database.url)
    for (const [layout, lotOf] of layouts) {
      for (const publishers of PUBLISHER_COUNTS) {
        const warmup = await run(server, token, publishers, lotOf, WARMUP_MS, MAX_PER_RUN)
        acknowledged += warmup.publishes
        const results: RunResult[] = []
        for (let r = 0; r < RUNS; r += 1) {
          const result = await run(server, token, publishers, lotOf, DURATION_MS, MAX_PER_RUN)
          acknowledged += result.publishes
          results.push(result)
        }
        const rates = results.map((result) => result.publishes / result.seconds)
        const latencies = results.flatMap((result) => result.latenciesMs)
        const errors = results.reduce((sum, result) => sum + result.errors, 0)
        const row = `| ${publishers} | ${layout} | ${Math.round(median(rates))} | ${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))} | ${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${errors} |`
        rows.push(row)
        process.stderr.write(`${row}\n`)
      }
    }
    const committed = (await committedEvents(database.url)) - before

    const lines = [
      '',
      `Publish throughput: setSpaceState over HTTP (loopback, keep-alive), one Switchboard process,`,
      `PostgreSQL (pool ${POOL_SIZE}) + Redis bus; ${RUNS} runs of ${DURATION_MS} ms per row after a ${WARMUP_MS} ms warm-up.`,
      '',
      '| publishers | channels | committed events/s (median) | range over runs | p50 ms | p99 ms | errors |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
      `Acknowledged publishes: ${acknowledged}; events committed to the log: ${committed}` +
        (acknowledged === committed ? ' (equal).' : ' (MISMATCH).'),
      `Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
        .map((load) => load.toFixed(1))
        .join(' ')} at the end.`,
      '',
    ]
    process.stdout.write(lines.join('\n'))
    if (acknowledged !== committed) process.exitCode = 1
  } finally {
    await server?.stop()
    await database.remove()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:publish failed: ${error instanceof Error ? error.stack : String(error)}\n`,
  )
  process.exit(1)
})
