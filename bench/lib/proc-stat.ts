import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc times: `getconf CLK_TCK`, or 100 when that fails. */
export const CLOCK_TICKS: { readonly perSecond: number; readonly source: string } = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    if (Number.isInteger(value) && value > 0) return { perSecond: value, source: 'getconf CLK_TCK' }
  } catch {
    // fall through to the usual Linux value
  }
  return { perSecond: 100, source: 'assumed 100 (getconf CLK_TCK failed)' }
})()

/**
 * CPU time the process `pid` has used so far (all its threads, user + system), in µs, from
 * `/proc/<pid>/stat` fields 14 and 15. The resolution is one clock tick (10 ms at 100 Hz).
 */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) * 1e6) / CLOCK_TICKS.perSecond
}
