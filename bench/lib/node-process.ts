import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The repository root: every bench process runs from there. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

const STDERR_TAIL = 8_000 // characters of a child's stderr kept for error messages

// Children still running, so that a failing bench leaves no process behind.
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** A Node process the bench started, with an IPC channel. */
export interface NodeProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** The last few KiB of its stderr (and stdout, when not inherited). */
  output(): string
  /** Resolves when it has ended. */
  readonly exited: Promise<void>
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it has ended. */
  stop(timeoutMs?: number): Promise<void>
}

export interface NodeProcessOptions {
  /** Script, relative to the repository root. */
  readonly entry: string
  /** Node flags before `--import tsx` (the same for every server). */
  readonly nodeFlags?: readonly string[]
  /** Modules preloaded after tsx (`--import`), relative to the repository root. */
  readonly preload?: readonly string[]
  /** The entry and preloads are compiled JavaScript: no tsx (default false). */
  readonly compiled?: boolean
  /** The whole environment of the child. */
  readonly env: Readonly<Record<string, string>>
}

/** Starts `node [flags] [--import tsx] [--import preload] entry` with an IPC channel. */
export function startNodeProcess({
  entry,
  nodeFlags = [],
  preload = [],
  compiled = false,
  env,
}: NodeProcessOptions): NodeProcess {
  const args = [
    ...nodeFlags,
    ...(compiled ? [] : ['--import', 'tsx']),
    ...preload.flatMap((module) => ['--import', `./${module}`]),
    entry,
  ]
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  if (child.pid === undefined) throw new Error(`could not spawn ${entry}`)
  running.add(child)
  let tail = ''
  const keep = (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL)
  }
  child.stdout?.setEncoding('utf8').on('data', keep)
  child.stderr?.setEncoding('utf8').on('data', keep)
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child)
      resolve()
    })
  })
  return {
    child,
    pid: child.pid,
    output: () => tail,
    exited,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      await exited
      clearTimeout(timer)
    },
  }
}
