/**
 * The fan-out bench's options: command line first, then `BENCH_*` environment variables,
 * then defaults. `--quick` shrinks everything for a smoke run.
 */
import { parseArgs } from 'node:util'
import type { ServerKind } from './bench-servers.js'
import type { PhaseTimes } from './measure-scenario.js'
import type { StoreUrls } from './postgres-redis.js'
import type { ScenarioSizes } from './scenarios.js'

/** Everything a bench run is parameterised by. */
export interface BenchOptions {
  /** Runs per server (`--runs`, `BENCH_RUNS`; default 3, quick 1). Medians are over these. */
  readonly runs: number
  readonly quick: boolean
  readonly sizes: ScenarioSizes
  readonly times: PhaseTimes
  /** Receiver processes (`--receivers`, `BENCH_RECEIVERS`; default 2). */
  readonly receivers: number
  /** Which servers (`--servers raw,yoga,switchboard,switchboard-pg`; default all). */
  readonly servers: ReadonlyArray<ServerKind['key']>
  /** Only these scenario keys (`--scenarios`); default all. */
  readonly scenarios: readonly string[] | undefined
  readonly stores: StoreUrls
  /** Where the markdown goes (`--out`; default bench/results/fanout.md; quick: none). */
  readonly out: string | undefined
}

const ALL_SERVERS: ReadonlyArray<ServerKind['key']> = [
  'raw',
  'yoga',
  'switchboard',
  'switchboard-pg',
]

/** Reads the options; throws naming the option when a value is not usable. */
export function readOptions(argv = process.argv.slice(2), env = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: env['BENCH_QUICK'] === '1' },
      runs: { type: 'string', default: env['BENCH_RUNS'] },
      scale: { type: 'string', default: env['BENCH_SCALE'] },
      'burst-messages': { type: 'string', default: env['BENCH_BURST_MESSAGES'] },
      'latency-ms': { type: 'string', default: env['BENCH_LATENCY_MS'] },
      receivers: { type: 'string', default: env['BENCH_RECEIVERS'] },
      servers: { type: 'string', default: env['BENCH_SERVERS'] },
      scenarios: { type: 'string', default: env['BENCH_SCENARIOS'] },
      out: { type: 'string', default: env['BENCH_OUT'] },
    },
  })
  const quick = values.quick ?? false
  const int = (name: string, raw: string | undefined, fallback: number, min = 1) => {
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`--${name} must be an integer >= ${min}, got "${raw}"`)
    }
    return value
  }
  const servers = readServers(values.servers)
  return {
    runs: int('runs', values.runs, quick ? 1 : 3),
    quick,
    sizes: {
      scale: int('scale', values.scale, quick ? 1_000 : 10_000, 10),
      burstMessages: int('burst-messages', values['burst-messages'], quick ? 10_000 : 50_000),
    },
    times: {
      latencyMs: int('latency-ms', values['latency-ms'], quick ? 2_000 : 4_000),
      latencyMinEvents: quick ? 2 : 3,
      timeoutMs: 30_000,
    },
    receivers: int('receivers', values.receivers, 2),
    servers,
    scenarios: values.scenarios?.split(','),
    stores: readStoreUrls(env),
    out: values.out ?? (quick ? undefined : 'bench/results/fanout.md'),
  }
}

/** The servers of `--servers a,b` (default all), refusing unknown ones by name. */
export function readServers(list: string | undefined): Array<ServerKind['key']> {
  return (list?.split(',') ?? ALL_SERVERS).map((key) => {
    if (!ALL_SERVERS.includes(key as ServerKind['key'])) {
      throw new Error(`--servers: unknown server "${key}" (known: ${ALL_SERVERS.join(', ')})`)
    }
    return key as ServerKind['key']
  })
}

/** Where the PostgreSQL + Redis column's stores are (`BENCH_POSTGRES_URL`, `BENCH_REDIS_URL`). */
export function readStoreUrls(env = process.env): StoreUrls {
  return {
    postgresAdminUrl: env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  }
}
