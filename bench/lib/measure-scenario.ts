/**
 * Measures one scenario on one running server: connect and subscribe everyone, prime, then a
 * throughput burst (CPU, event-loop delay, delivered/s) and a paced latency phase.
 */
import type { MemoryReport } from '../probe/server-probe.js'
import type { BenchServer } from './bench-servers.js'
import type { LoadGenerator, PhaseOutcome } from './load-generator.js'
import { cpuMicros } from './proc-stat.js'
import { lotsOf, type Scenario, type ScenarioSizes, subscribersOf } from './scenarios.js'
import { percentile } from './stats.js'

const SETTLE = 500 // ms after priming and between phases, so nothing is still on its way
const BURST_CONCURRENCY = 32 // publish requests in flight during a burst

/** How long phases last. */
export interface PhaseTimes {
  /** Shortest latency phase, ms. */
  readonly latencyMs: number
  /** Fewest events per channel in a latency phase. */
  readonly latencyMinEvents: number
  /** How long a phase may wait for its last message, ms. */
  readonly timeoutMs: number
}

/** One run of one scenario on one server. */
export interface ScenarioRun {
  readonly subscribers: number
  /** Delivered messages per second over the burst: first publish sent -> last message in. */
  readonly throughput: number
  /** Server CPU (user + system, all threads) during the burst per delivered message, µs. */
  readonly cpuPerMessageUs: number
  /** Max event-loop delay of the server during the burst, ms. */
  readonly loopDelayMaxMs: number
  /** Publish sent -> message received at the paced load, ms. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Messages received / messages expected over both phases. */
  readonly delivered: number
  readonly expected: number
  /** Idle RSS per subscribed connection (after GC), KiB; NaN when not measured here. */
  readonly idleKiB: number
  /** Busiest receiver's CPU during the burst, share of one core (load generator saturation). */
  readonly receiverCpuShare: number
  /** Publishes per second the burst achieved (answered). */
  readonly publishRate: number
  readonly connectMs: number
  readonly notes: readonly string[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function problems(label: string, outcome: PhaseOutcome, errors: number, sample: readonly string[]) {
  const notes: string[] = []
  if (!outcome.complete || outcome.delivered !== outcome.expected || outcome.mismatched > 0) {
    notes.push(
      `${label}: ${outcome.delivered}/${outcome.expected} delivered, ${outcome.mismatched} sockets off count`,
    )
  }
  if (outcome.unexpected > 0) {
    notes.push(
      `${label}: ${outcome.unexpected} unexpected messages (${outcome.unexpectedSample[0]})`,
    )
  }
  if (errors > 0) notes.push(`${label}: ${errors} publish errors (${sample[0]})`)
  return notes
}

/**
 * The latency phase: `offeredPerSecond` messages/s, i.e. `offeredPerSecond / perChannel`
 * publishes/s, for at least `latencyMs` and `latencyMinEvents` events, spread over as many
 * of the scenario's lots as there are events (one event per lot when there are many lots).
 */
async function measureLatency(
  load: LoadGenerator,
  scenario: Scenario,
  lots: readonly string[],
  times: PhaseTimes,
  phase: number,
) {
  const perSecond = scenario.offeredPerSecond / scenario.perChannel
  const events = Math.max(times.latencyMinEvents, Math.round((perSecond * times.latencyMs) / 1000))
  const used = lots.slice(0, Math.min(lots.length, events))
  const perLot = Math.round(events / used.length)
  await sleep(SETTLE)
  return load.measure(
    { phase, lots: used, perLot, concurrency: 0, perSecond },
    true,
    times.timeoutMs,
  )
}

/**
 * Runs `scenario` against `server` with `load`; `nextPhase` hands out unique phase numbers.
 * Connects its subscribers (closing those of the scenario before), or keeps the first of the
 * scenario before when it `reuses` them; leaves them connected.
 */
export async function measureScenario(
  server: BenchServer,
  load: LoadGenerator,
  secret: string,
  sizes: ScenarioSizes,
  scenario: Scenario,
  times: PhaseTimes,
  nextPhase: () => number,
): Promise<ScenarioRun> {
  const subscribers = subscribersOf(scenario)
  const lots = lotsOf(scenario)
  const connectStarted = performance.now()
  let before: MemoryReport | undefined
  if (scenario.reuses) {
    await load.trim(subscribers)
  } else {
    await load.disconnect()
    if (scenario.idleMemory) before = await server.probe.request('memory', undefined)
    await load.connect(server.wsUrl, secret, sizes, scenario)
  }
  const connectMs = performance.now() - connectStarted
  await load.prime(nextPhase())
  await sleep(SETTLE)
  let idleKiB = Number.NaN
  if (before) {
    const after = await server.probe.request('memory', undefined)
    idleKiB = (after.rss - before.rss) / subscribers / 1024
  }

  const burstPhase = nextPhase()
  const cpuBefore = cpuMicros(server.pid)
  const receiversBefore = load.receiverPids.map(cpuMicros)
  const wallBefore = performance.now()
  await server.probe.request('loopDelayReset', undefined)
  const burst = await load.measure(
    {
      phase: burstPhase,
      lots,
      perLot: scenario.burstPerChannel,
      concurrency: BURST_CONCURRENCY,
      perSecond: 0,
    },
    false,
    times.timeoutMs,
  )
  const loopDelay = await server.probe.request('loopDelay', undefined)
  const cpuUsed = cpuMicros(server.pid) - cpuBefore
  const wallUs = (performance.now() - wallBefore) * 1000
  const receiverCpuShare = Math.max(
    ...load.receiverPids.map((pid, i) => (cpuMicros(pid) - (receiversBefore[i] ?? 0)) / wallUs),
  )
  const windowMs = burst.outcome.lastAt - burst.published.firstSentAt
  const publishMs = burst.published.lastAnsweredAt - burst.published.firstSentAt

  const paced = scenario.warmup
    ? undefined
    : await measureLatency(load, scenario, lots, times, nextPhase())
  const notes = [
    ...problems('burst', burst.outcome, burst.published.errors, burst.published.errorSample),
    ...(paced
      ? problems('paced', paced.outcome, paced.published.errors, paced.published.errorSample)
      : []),
  ]
  if (paced && paced.published.maxLagMs > 50) {
    notes.push(`paced: publisher ran up to ${paced.published.maxLagMs.toFixed(0)} ms late`)
  }
  return {
    subscribers,
    throughput: burst.outcome.delivered / (windowMs / 1000),
    cpuPerMessageUs: cpuUsed / burst.outcome.delivered,
    loopDelayMaxMs: loopDelay.maxMs,
    p50Ms: paced ? percentile(paced.outcome.latencies, 50) : Number.NaN,
    p99Ms: paced ? percentile(paced.outcome.latencies, 99) : Number.NaN,
    delivered: burst.outcome.delivered + (paced?.outcome.delivered ?? 0),
    expected: burst.outcome.expected + (paced?.outcome.expected ?? 0),
    idleKiB,
    receiverCpuShare,
    publishRate: burst.published.ok / (publishMs / 1000),
    connectMs,
    notes,
  }
}
