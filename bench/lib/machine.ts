/** What the results are to be read against: the machine and the versions measured. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './node-process.js'

/** The machine and software of a bench run. */
export interface MachineInfo {
  readonly cpuModel: string
  readonly cores: number
  readonly memoryGiB: number
  readonly kernel: string
  readonly node: string
  readonly versions: Readonly<Record<string, string>>
  /** `git rev-parse --short HEAD`, with "+ uncommitted changes" when the tree is dirty. */
  readonly commit: string
}

const PACKAGES = ['graphql-yoga', 'graphql-ws', 'ws', 'graphql', 'jose', 'tsx']

function packageVersion(name: string): string {
  try {
    const manifest = readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')
    return (JSON.parse(manifest) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function gitCommit(): string {
  try {
    const run = (...args: string[]) =>
      execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
    const head = run('rev-parse', '--short', 'HEAD')
    return run('status', '--porcelain').length > 0 ? `${head} + uncommitted changes` : head
  } catch {
    return 'unknown'
  }
}

/** Reads the machine and the versions of Node and the packages compared. */
export function describeMachine(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    node: process.version,
    versions: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(name)])),
    commit: gitCommit(),
  }
}

/** The 1, 5 and 15 minute load averages, formatted. */
export const loadAverage = (): string =>
  loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')
