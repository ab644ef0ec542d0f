/**
 * Publish cost: server CPU per `setSpaceState` with nobody subscribed, for the servers of the
 * fan-out bench, compiled and started as `npm run bench` starts them. Where an event has few
 * subscribers (1,000 lots × 10), this is most of the CPU per delivered message.
 *
 *   npm run bench:publish-cost -- [--runs 3] [--publishes 4000]
 *                                 [--servers raw,yoga,switchboard,switchboard-pg]
 *
 * Each run starts each server afresh, creates the lots, sends a warm-up, then `--publishes`
 * changes over loopback from 32 concurrent requests on kept-alive sockets, and reads the
 * server's CPU (user + system, /proc/PID/stat) before and after. Prints a markdown table of
 * medians over the runs.
 */
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { parseArgs } from 'node:util'
import { signToken } from '../src/auth/sign-token.js'
import {
  type BenchServer,
  SERVER_KINDS,
  type ServerKind,
  startBenchServer,
} from './lib/bench-servers.js'
import { compileServers } from './lib/compile-servers.js'
import { describeMachine, loadAverage } from './lib/machine.js'
import { readServers, readStoreUrls } from './lib/options.js'
import { type BenchStores, createBenchStores, storesAvailable } from './lib/postgres-redis.js'
import { cpuMicros } from './lib/proc-stat.js'
import { median } from './lib/stats.js'
import { postGraphql } from './load/post-graphql.js'
import { createLots, type PublishTarget, SET_SPACE, spaceChanges } from './load/space-changes.js'

const LOTS = Array.from({ length: 200 }, (_, i) => `cost-${i}`)
const CONCURRENCY = 32
const WARM_UP = 1_500 // publishes before the measured ones

const log = (line: string) => process.stderr.write(`${line}\n`)

/** One measured run of one server. */
interface Run {
  readonly cpuPerPublishUs: number
  readonly publishesPerSecond: number
}

/** Sends `count` space changes over the lots, `CONCURRENCY` at a time; throws on any error. */
async function publish(
  target: PublishTarget,
  changes: ReturnType<typeof spaceChanges>,
  count: number,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) {
      const input = changes.next(LOTS[next++ % LOTS.length] as string, 'publish cost')
      const result = await postGraphql(target.agent, target.url, target.token, SET_SPACE, {
        input,
      })
      if (result.errors?.length) throw new Error(`setSpaceState: ${JSON.stringify(result.errors)}`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

async function measure(server: BenchServer, secret: string, publishes: number): Promise<Run> {
  const target: PublishTarget = {
    url: `${server.origin}/graphql`,
    token: await signToken(secret, { sub: 'bench-cost', role: 'service' }),
    agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
  }
  try {
    await createLots(target, LOTS, 8)
    const changes = spaceChanges()
    await publish(target, changes, WARM_UP)
    const cpuBefore = cpuMicros(server.pid)
    const startedAt = performance.now()
    await publish(target, changes, publishes)
    const seconds = (performance.now() - startedAt) / 1000
    return {
      cpuPerPublishUs: (cpuMicros(server.pid) - cpuBefore) / publishes,
      publishesPerSecond: publishes / seconds,
    }
  } finally {
    target.agent.destroy()
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      publishes: { type: 'string', default: '4000' },
      servers: { type: 'string' },
    },
  })
  const runs = Number(values.runs)
  const publishes = Number(values.publishes)
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be an integer >= 1')
  if (!Number.isInteger(publishes) || publishes < 100) {
    throw new Error('--publishes must be an integer >= 100')
  }
  const storeUrls = readStoreUrls()
  let kinds = readServers(values.servers).map((key) => SERVER_KINDS[key])
  const notes: string[] = []
  if (kinds.some((kind) => kind.key === 'switchboard-pg')) {
    const missing = await storesAvailable(storeUrls)
    if (missing) {
      notes.push(`Switchboard (PG + Redis) skipped: ${missing}`)
      kinds = kinds.filter((kind) => kind.key !== 'switchboard-pg')
    }
  }
  const loadAtStart = loadAverage()
  const secret = randomBytes(32).toString('base64url')
  log('compiling the servers (tsc)')
  const compiledDir = await compileServers()
  const results = new Map(kinds.map((kind) => [kind.key, [] as Run[]]))
  for (let run = 0; run < runs; run += 1) {
    // A different server goes first each run, so slow drifts of a shared machine spread out.
    for (const kind of kinds.map((_, i) => kinds[(i + run) % kinds.length] as ServerKind)) {
      let stores: BenchStores | undefined
      let server: BenchServer | undefined
      try {
        if (kind.key === 'switchboard-pg') stores = await createBenchStores(storeUrls)
        server = await startBenchServer({ ...kind, env: stores?.env ?? {} }, secret, compiledDir)
        const result = await measure(server, secret, publishes)
        results.get(kind.key)?.push(result)
        log(
          `[run ${run + 1}/${runs}] ${kind.title}: ${result.cpuPerPublishUs.toFixed(0)} µs CPU per publish, ${result.publishesPerSecond.toFixed(0)} publishes/s`,
        )
      } finally {
        await server?.stop()
        await stores?.remove()
      }
    }
  }

  const machine = describeMachine()
  const rawCost = median((results.get('raw') ?? []).map((run) => run.cpuPerPublishUs))
  const rows = kinds.map((kind) => {
    const measured = results.get(kind.key) ?? []
    const costs = measured.map((run) => run.cpuPerPublishUs)
    const cost = median(costs)
    const ratio =
      Number.isFinite(rawCost) && kind.key !== 'raw' ? `${(cost / rawCost).toFixed(2)}×` : '–'
    return `| ${kind.title} | ${cost.toFixed(0)} | ${Math.min(...costs).toFixed(0)}–${Math.max(...costs).toFixed(0)} | ${ratio} | ${median(measured.map((run) => run.publishesPerSecond)).toFixed(0)} |`
  })
  console.log(
    [
      `# Publish cost (${new Date().toISOString()})`,
      '',
      `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, Switchboard at ${machine.commit}; load average ${loadAtStart} at the start, ${loadAverage()} at the end. ${publishes} publishes per run after ${WARM_UP} to warm up, ${CONCURRENCY} concurrent, ${LOTS.length} lots, medians of ${runs} run(s); no subscribers.`,
      '',
      '| server | server CPU µs per publish | range | / raw ws | publishes/s |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...rows,
      ...notes.map((note) => `\n${note}`),
    ].join('\n'),
  )
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
