import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { TEST_SECRET } from './tokens.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const START_TIMEOUT = 30_000 // ms until "switchboard listening"; tsx compiles on first start
const STOP_TIMEOUT = 15_000 // ms a SIGTERM may take before `stop()` falls back to SIGKILL
const MAX_LOG_LINES = 5_000
// Only what Node needs to run; nothing from the developer's shell (a DATABASE_URL there must
// not leak into a test server).
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']

/** How a server process ended. */
export interface ProcessExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** `Date.now()` when it ended. */
  readonly at: number
}

/** One JSON log line of the server (pino): `msg`, `level` and whatever fields it logged. */
export type LogLine = Readonly<Record<string, unknown>> & { readonly msg?: string }

/** A Switchboard running as its own process (`node --import tsx src/index.ts`). */
export interface ServerProcess {
  readonly pid: number
  /** `http://127.0.0.1:PORT` */
  readonly origin: string
  /** `http://127.0.0.1:PORT/graphql` */
  readonly url: string
  /** `ws://127.0.0.1:PORT/graphql` */
  readonly wsUrl: string
  /** The JSON log lines so far, oldest first (the last `MAX_LOG_LINES`). */
  readonly logs: readonly LogLine[]
  /** Resolves when the process has ended, however it ended. */
  readonly exited: Promise<ProcessExit>
  /** Sends `signal` without waiting (no-op once exited). */
  signal(signal: NodeJS.Signals): void
  /** SIGTERM, then waits for the exit; SIGKILL after `timeoutMs` (default 15 s). */
  stop(timeoutMs?: number): Promise<ProcessExit>
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<ProcessExit>
  /** Resolves with the first log line (already seen or coming) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
}

export interface ServerProcessOptions {
  /**
   * Environment beside the defaults (`PORT=0`, `HOST=127.0.0.1`, `LOG_LEVEL=info`,
   * `JWT_SECRET=TEST_SECRET`), e.g. `DATABASE_URL`, `REDIS_URL`, `REDIS_PREFIX`.
   */
  readonly env?: Readonly<Record<string, string>>
  /** How long start-up may take (default 30 s); the process is killed after that. */
  readonly startTimeoutMs?: number
}

// Children still running, so that a worker that dies mid-test does not leave servers behind.
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * Starts a Switchboard process and resolves once it logged "switchboard listening", with the
 * port read from that line. Rejects (after killing it) when it exits or stays silent first,
 * with the tail of its stderr.
 */
export async function startServerProcess({
  env = {},
  startTimeoutMs = START_TIMEOUT,
}: ServerProcessOptions = {}): Promise<ServerProcess> {
  const inherited = Object.fromEntries(
    INHERITED_ENV.flatMap((name) => {
      const value = process.env[name]
      return value === undefined ? [] : [[name, value]]
    }),
  )
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...inherited,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      JWT_SECRET: TEST_SECRET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  const pid = child.pid
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal, at: Date.now() })
    })
  })

  const logs: LogLine[] = []
  const logWaiters = new Set<(line: LogLine) => void>()
  // Read stdout for the whole life of the process: a full pipe would block its logger.
  createInterface({ input: child.stdout }).on('line', (text) => {
    let line: LogLine
    try {
      line = JSON.parse(text) as LogLine
    } catch {
      return // not a log line (e.g. the dev-token banner)
    }
    logs.push(line)
    if (logs.length > MAX_LOG_LINES) logs.shift()
    for (const waiter of [...logWaiters]) waiter(line)
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8_000)
  })

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 10_000) => {
    const seen = logs.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise<LogLine>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        logWaiters.delete(waiter)
      }
      const waiter = (line: LogLine) => {
        if (!match(line)) return
        done()
        resolve(line)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`))
      }, timeoutMs)
      logWaiters.add(waiter)
    })
  }

  const signal = (name: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name)
  }
  const kill = async () => {
    signal('SIGKILL')
    return exited
  }

  if (pid === undefined) throw new Error('could not spawn the server process')
  let listening: LogLine
  try {
    const exitedFirst = exited.then((exit) => {
      throw new Error(`exited before listening (${JSON.stringify(exit)})`)
    })
    exitedFirst.catch(() => {}) // only the race below cares, and only before listening
    listening = await Promise.race([
      waitForLog((line) => line.msg === 'switchboard listening', startTimeoutMs),
      exitedFirst,
    ])
  } catch (error) {
    await kill()
    throw new Error(`server process failed to start: ${(error as Error).message}\n${stderr}`)
  }
  const port = new URL(String(listening['url'])).port
  const origin = `http://127.0.0.1:${port}`
  return {
    pid,
    origin,
    url: `${origin}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    logs,
    exited,
    signal,
    async stop(timeoutMs = STOP_TIMEOUT) {
      signal('SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs)
      })
      await Promise.race([exited, late])
      clearTimeout(timer)
      return kill()
    },
    kill,
    waitForLog,
  }
}
