import { readProcessMemory } from './process-memory.js'

/** Resident memory of a process while it was watched. */
export interface RssGrowth {
  /** `VmRSS` when watching started, in MiB. */
  readonly baselineMiB: number
  /** Highest `VmRSS` sampled since, in MiB. */
  readonly highestMiB: number
  /** `highestMiB - baselineMiB`. */
  readonly growthMiB: number
}

export interface RssWatch {
  /** Stops sampling; throws when a sample could not be read. */
  stop(): RssGrowth
  /** Stops sampling, for cleanup after a failure. */
  cancel(): void
}

/**
 * Samples `VmRSS` of process `pid` from `/proc` every `everyMs` (default 100), keeping the
 * highest; resolves once the baseline is read.
 */
export async function watchRss(pid: number, everyMs = 100): Promise<RssWatch> {
  const baselineMiB = (await readProcessMemory(pid)).rssMiB
  let highestMiB = baselineMiB
  let failure: unknown
  const timer = setInterval(() => {
    readProcessMemory(pid).then(
      (memory) => {
        highestMiB = Math.max(highestMiB, memory.rssMiB)
      },
      (error: unknown) => {
        failure ??= error
      },
    )
  }, everyMs)
  return {
    stop() {
      clearInterval(timer)
      if (failure !== undefined) throw new Error(`reading VmRSS failed: ${String(failure)}`)
      return { baselineMiB, highestMiB, growthMiB: highestMiB - baselineMiB }
    },
    cancel: () => clearInterval(timer),
  }
}
