/**
 * Preloaded into every benchmarked server (`node --expose-gc --import tsx --import
 * ./bench/probe/server-probe.ts <server>`), so all servers are observed the same way. Answers
 * the runner over the child-process IPC channel:
 *
 * - `memory`: runs a full GC (twice, 200 ms apart, so finalizers' garbage goes too) and reports
 *   `process.memoryUsage()`; without `--expose-gc` it reports without collecting.
 * - `loopDelayReset` / `loopDelay`: the event-loop delay histogram
 *   (`perf_hooks.monitorEventLoopDelay`, 5 ms resolution) since the last reset, in ms.
 *
 * The channel is unref'd, so the probe never keeps a server alive.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { serveIpc } from '../lib/ipc.js'

const RESOLUTION = 5 // ms sampling of the event-loop delay histogram
const GC_PAUSE = 200 // ms between the two collections of `memory`

/** What `memory` reports, in bytes. */
export interface MemoryReport {
  readonly rss: number
  readonly heapUsed: number
  readonly external: number
  readonly collected: boolean
}

/** Event-loop delay since the last reset, in ms. */
export interface LoopDelayReport {
  readonly maxMs: number
  readonly p99Ms: number
  readonly meanMs: number
}

/** The probe's commands. */
export type ProbeCommands = {
  memory: [undefined, MemoryReport]
  loopDelayReset: [undefined, null]
  loopDelay: [undefined, LoopDelayReport]
}

const histogram = monitorEventLoopDelay({ resolution: RESOLUTION })
histogram.enable()

const collect = globalThis.gc

serveIpc<ProbeCommands>(
  {
    async memory() {
      collect?.()
      // A second collection after a pause takes what the first one's finalizers released.
      await new Promise((resolve) => setTimeout(resolve, GC_PAUSE))
      collect?.()
      const usage = process.memoryUsage()
      return {
        rss: usage.rss,
        heapUsed: usage.heapUsed,
        external: usage.external,
        collected: collect !== undefined,
      }
    },
    loopDelayReset() {
      histogram.reset()
      return null
    },
    loopDelay() {
      const ms = (ns: number) => (Number.isFinite(ns) ? ns / 1e6 : 0)
      return {
        maxMs: ms(histogram.max),
        p99Ms: ms(histogram.percentile(99)),
        meanMs: ms(histogram.mean),
      }
    },
  },
  { unref: true },
)
