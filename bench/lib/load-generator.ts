/**
 * The load generator as the runner sees it: `receivers` processes holding the subscribers
 * (split evenly) and one publisher process, all plain Node processes of their own.
 */

import type { PublishArgs, PublisherCommands, PublishResult } from '../load/publisher.js'
import type { ConnectResult, PhaseReport, ReceiverCommands } from '../load/receiver.js'
import { type IpcClient, ipcClient } from './ipc.js'
import { type NodeProcess, startNodeProcess } from './node-process.js'
import { type Scenario, type ScenarioSizes, subscribersOf } from './scenarios.js'

const CONNECT_CONCURRENCY = 200 // sockets each receiver opens at once
const PRIME_INTERVAL = 250 // ms between priming rounds
const PRIME_TIMEOUT = 120_000 // ms until subscribers that never receive anything fail the run

interface Receiver {
  readonly process: NodeProcess
  readonly ipc: IpcClient<ReceiverCommands>
  readonly done: Set<number>
  wake: (() => void) | undefined
}

/** What one measured phase delivered, merged over the receivers. */
export interface PhaseOutcome {
  readonly delivered: number
  readonly expected: number
  readonly mismatched: number
  readonly firstAt: number
  readonly lastAt: number
  readonly latencies: number[]
  readonly unexpected: number
  readonly unexpectedSample: string[]
  /** Whether every receiver reported all its messages before the timeout. */
  readonly complete: boolean
}

/** Receivers and publisher, started once for the whole bench. */
export interface LoadGenerator {
  /** Process ids of the receivers (for their CPU use). */
  readonly receiverPids: readonly number[]
  /** Points the publisher at a server. */
  target(origin: string, secret: string): Promise<void>
  /** Creates the lots of `scenarios` on the server. */
  setup(lots: readonly string[]): Promise<number>
  /** Connects and subscribes every subscriber of `scenario`; throws when any fails. */
  connect(wsUrl: string, secret: string, sizes: ScenarioSizes, scenario: Scenario): Promise<number>
  /** Publishes to lots with unprimed subscribers until every subscriber received an event. */
  prime(phase: number): Promise<number>
  /**
   * Starts counting `publish.phase` (each subscriber of `publish.lots` expecting
   * `publish.perLot`), runs `publish` and waits until every receiver got all its messages or
   * `timeoutMs` passed.
   */
  measure(
    publish: PublishArgs,
    latency: boolean,
    timeoutMs: number,
  ): Promise<{ outcome: PhaseOutcome; published: PublishResult }>
  /** Keeps subscribers `0..keep - 1` of the scenario connected last, closes the others. */
  trim(keep: number): Promise<void>
  /** Closes every subscriber. */
  disconnect(): Promise<void>
  stop(): Promise<void>
}

/** Starts `receivers` receiver processes and one publisher. */
export async function startLoadGenerator(
  receivers: number,
  env: Readonly<Record<string, string>>,
): Promise<LoadGenerator> {
  const pool: Receiver[] = Array.from({ length: receivers }, (_, i) => {
    const process = startNodeProcess({ entry: 'bench/load/receiver.ts', env })
    const receiver: Receiver = {
      process,
      ipc: ipcClient<ReceiverCommands>(process.child, `receiver ${i}`),
      done: new Set(),
      wake: undefined,
    }
    receiver.ipc.onNotice((notice) => {
      if (notice.notice !== 'done') return
      receiver.done.add((notice.data as { phase: number }).phase)
      receiver.wake?.()
    })
    return receiver
  })
  const publisherProcess = startNodeProcess({ entry: 'bench/load/publisher.ts', env })
  const publisher = ipcClient<PublisherCommands>(publisherProcess.child, 'publisher')

  const waitDone = (receiver: Receiver, phase: number, deadline: number) =>
    new Promise<boolean>((resolve) => {
      const check = () => {
        if (receiver.done.has(phase)) return finish(true)
        if (performance.now() >= deadline) return finish(false)
      }
      const timer = setTimeout(check, Math.max(0, deadline - performance.now()))
      const finish = (ok: boolean) => {
        clearTimeout(timer)
        receiver.wake = undefined
        resolve(ok)
      }
      receiver.wake = check
      check()
    })

  return {
    receiverPids: pool.map((receiver) => receiver.process.pid),
    async target(origin, secret) {
      await publisher.request('init', { origin, secret })
    },
    async setup(lots) {
      return (await publisher.request('setup', { lots }, 300_000)).ms
    },
    async connect(wsUrl, secret, sizes, scenario) {
      const total = subscribersOf(scenario)
      const startedAt = performance.now()
      const results: ConnectResult[] = await Promise.all(
        pool.map((receiver, i) =>
          receiver.ipc.request(
            'connect',
            {
              url: wsUrl,
              secret,
              sizes,
              scenario: scenario.key,
              offset: i,
              stride: pool.length,
              concurrency: CONNECT_CONCURRENCY,
            },
            600_000,
          ),
        ),
      )
      const failed = results.reduce((sum, result) => sum + result.failed, 0)
      if (failed > 0) {
        const errors = results.flatMap((result) => result.errors).slice(0, 5)
        throw new Error(`${failed} of ${total} subscribers failed to connect: ${errors.join('; ')}`)
      }
      return performance.now() - startedAt
    },
    async prime(phase) {
      const startedAt = performance.now()
      for (;;) {
        const states = await Promise.all(
          pool.map((receiver) => receiver.ipc.request('unprimed', undefined)),
        )
        const lots = [...new Set(states.flatMap((state) => state.lots))]
        if (lots.length === 0) return performance.now() - startedAt
        if (performance.now() - startedAt > PRIME_TIMEOUT) {
          const sockets = states.reduce((sum, state) => sum + state.sockets, 0)
          const seen = states.flatMap((state) => state.unexpectedSample).slice(0, 3)
          throw new Error(
            `${sockets} subscribers received nothing in ${PRIME_TIMEOUT} ms; they got: ${seen.join('; ') || 'nothing'}`,
          )
        }
        const result = await publisher.request('publish', {
          phase,
          lots,
          perLot: 1,
          concurrency: 16,
          perSecond: 0,
        })
        if (result.errors > 0)
          throw new Error(`priming publishes failed: ${result.errorSample.join('; ')}`)
        await new Promise((resolve) => setTimeout(resolve, PRIME_INTERVAL))
      }
    },
    async measure(publish, latency, timeoutMs) {
      const { phase, perLot, lots } = publish
      await Promise.all(
        pool.map((receiver) => receiver.ipc.request('expect', { phase, perLot, lots, latency })),
      )
      const published = await publisher.request('publish', publish, timeoutMs + 60_000)
      const deadline = performance.now() + timeoutMs
      const complete = (
        await Promise.all(pool.map((receiver) => waitDone(receiver, phase, deadline)))
      ).every(Boolean)
      const reports: PhaseReport[] = await Promise.all(
        pool.map((receiver) => receiver.ipc.request('report', undefined)),
      )
      const active = reports.filter((report) => report.delivered > 0)
      return {
        published,
        outcome: {
          delivered: reports.reduce((sum, report) => sum + report.delivered, 0),
          expected: reports.reduce((sum, report) => sum + report.expected, 0),
          mismatched: reports.reduce((sum, report) => sum + report.mismatched, 0),
          firstAt: Math.min(...active.map((report) => report.firstAt)),
          lastAt: Math.max(0, ...active.map((report) => report.lastAt)),
          latencies: reports.flatMap((report) => report.latencies),
          unexpected: reports.reduce((sum, report) => sum + report.unexpected, 0),
          unexpectedSample: reports.flatMap((report) => report.unexpectedSample).slice(0, 5),
          complete,
        },
      }
    },
    async trim(keep) {
      await Promise.all(pool.map((receiver) => receiver.ipc.request('trim', { keep })))
    },
    async disconnect() {
      await Promise.all(pool.map((receiver) => receiver.ipc.request('close', undefined)))
    },
    async stop() {
      await Promise.all([
        ...pool.map((receiver) => receiver.process.stop()),
        publisherProcess.stop(),
      ])
    },
  }
}
