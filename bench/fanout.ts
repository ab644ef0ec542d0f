/**
 * Fan-out benchmark: Switchboard (embedded, and on PostgreSQL + Redis) against vanilla Yoga +
 * graphql-ws and a raw `ws` broadcast, same schema slice, same documents, same events, in one
 * run. See bench/README.md.
 *
 *   npm run bench                       # full: 3 runs per server, writes bench/results/fanout.md
 *   npm run bench -- --quick            # smoke: small scenarios, 1 run, nothing written
 *   npm run bench -- --runs 5 --servers raw,switchboard --scenarios one-10000
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import {
  type BenchServer,
  SERVER_KINDS,
  type ServerKind,
  startBenchServer,
} from './lib/bench-servers.js'
import { compileServers } from './lib/compile-servers.js'
import { startLoadGenerator } from './lib/load-generator.js'
import { describeMachine, loadAverage } from './lib/machine.js'
import { measureScenario, type ScenarioRun } from './lib/measure-scenario.js'
import { REPO_ROOT } from './lib/node-process.js'
import { readOptions } from './lib/options.js'
import { type BenchStores, createBenchStores, storesAvailable } from './lib/postgres-redis.js'
import { renderReport, type ServerResults } from './lib/report.js'
import { lotsOf, makeScenarios } from './lib/scenarios.js'

const log = (line: string) => process.stderr.write(`${line}\n`)

function summary(run: ScenarioRun): string {
  const fmt = (value: number, digits = 0) =>
    Number.isFinite(value)
      ? value.toLocaleString('en-US', {
          maximumFractionDigits: digits,
          minimumFractionDigits: digits,
        })
      : '–'
  return [
    `${fmt(run.throughput)} msg/s`,
    `${fmt(run.cpuPerMessageUs, 2)} µs/msg`,
    `p50 ${fmt(run.p50Ms, 1)} p99 ${fmt(run.p99Ms, 1)} ms`,
    `loop ${fmt(run.loopDelayMaxMs)} ms`,
    `${run.delivered}/${run.expected}`,
    Number.isNaN(run.idleKiB) ? '' : `idle ${fmt(run.idleKiB, 1)} KiB/conn`,
    `rcv cpu ${fmt(run.receiverCpuShare * 100)}%`,
    `pub ${fmt(run.publishRate)}/s`,
    `connect ${fmt(run.connectMs / 1000, 1)} s`,
    ...run.notes,
  ]
    .filter(Boolean)
    .join(', ')
}

async function main(): Promise<void> {
  const options = readOptions()
  const startedAt = Date.now()
  const loadAtStart = loadAverage()
  const secret = randomBytes(32).toString('base64url')
  const machine = describeMachine()
  const scenarios = makeScenarios(options.sizes).filter(
    (scenario) => scenario.warmup || !options.scenarios || options.scenarios.includes(scenario.key),
  )
  const notes: string[] = []
  let kinds = options.servers.map((key) => SERVER_KINDS[key])
  if (options.servers.includes('switchboard-pg')) {
    const missing = await storesAvailable(options.stores)
    if (missing) {
      notes.push(`Switchboard (PG + Redis) skipped: ${missing}`)
      kinds = kinds.filter((kind) => kind.key !== 'switchboard-pg')
    }
  }
  const lots = [...new Set(scenarios.flatMap(lotsOf))]
  const results: ServerResults = new Map(kinds.map((kind) => [kind.key, new Map()]))
  const loadEnv = Object.fromEntries(
    ['PATH', 'HOME', 'TMPDIR', 'LANG'].flatMap((name) => {
      const value = process.env[name]
      return value === undefined ? [] : [[name, value]]
    }),
  )
  log('compiling the servers (tsc)')
  const compiledDir = await compileServers()
  const load = await startLoadGenerator(options.receivers, loadEnv)
  let phase = 0
  const nextPhase = () => ++phase
  try {
    for (let run = 0; run < options.runs; run += 1) {
      // A different server goes first each run, so slow drifts of a shared machine spread out.
      const order = kinds.map((_, i) => kinds[(i + run) % kinds.length] as ServerKind)
      for (const kind of order) {
        let stores: BenchStores | undefined
        let server: BenchServer | undefined
        try {
          if (kind.key === 'switchboard-pg') stores = await createBenchStores(options.stores)
          server = await startBenchServer({ ...kind, env: stores?.env ?? {} }, secret, compiledDir)
          await load.target(server.origin, secret)
          const setupMs = await load.setup(lots)
          log(
            `[run ${run + 1}/${options.runs}] ${kind.title}: ${lots.length} lots in ${Math.round(setupMs)} ms`,
          )
          for (const scenario of scenarios) {
            const result = await measureScenario(
              server,
              load,
              secret,
              options.sizes,
              scenario,
              options.times,
              nextPhase,
            )
            log(`  ${scenario.key}: ${summary(result)}`)
            if (scenario.warmup) continue
            const runs = results.get(kind.key)?.get(scenario.key) ?? []
            runs.push(result)
            results.get(kind.key)?.set(scenario.key, runs)
          }
        } catch (error) {
          // One server failing (e.g. a crash mid-run) must not cost the other columns.
          const message = (error as Error).message.split('\n')[0]
          notes.push(`${kind.title}, run ${run + 1} failed: ${message}`)
          log(`  FAILED: ${(error as Error).stack}`)
        } finally {
          await load.disconnect().catch(() => undefined)
          await server?.stop()
          await stores?.remove()
        }
      }
    }
  } finally {
    await load.stop()
  }
  const report = renderReport({
    machine,
    options,
    kinds,
    scenarios: scenarios.filter((scenario) => !scenario.warmup),
    results,
    notes,
    durationMs: Date.now() - startedAt,
    loadAverages: [loadAtStart, loadAverage()],
  })
  process.stdout.write(report)
  if (options.out) {
    const path = join(REPO_ROOT, options.out)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, report)
    log(`written to ${options.out}`)
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${error instanceof Error ? error.stack : String(error)}`)
  process.exit(1)
})
