import { readFile } from 'node:fs/promises'

/** Resident memory of a process, in MiB, as Linux reports it in `/proc/<pid>/status`. */
export interface ProcessMemory {
  /** `VmRSS`: resident now. */
  readonly rssMiB: number
  /** `VmHWM`: the most it has been resident since it started. */
  readonly peakRssMiB: number
}

/** Reads `VmRSS` and `VmHWM` of `pid`; rejects when the process is gone or this is not Linux. */
export async function readProcessMemory(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
    if (!match?.[1]) throw new Error(`no ${field} in /proc/${pid}/status`)
    return Number(match[1]) / 1024
  }
  return { rssMiB: kib('VmRSS'), peakRssMiB: kib('VmHWM') }
}
