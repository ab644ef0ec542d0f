/**
 * The servers under test and how each is started: every one in its own process, the same
 * way, compiled to JavaScript first (`node --expose-gc --import <compiled probe> <compiled
 * entry>`, see `compile-servers.ts`), with
 * the same environment, on a free loopback port chosen here (with `LOG_LEVEL=warn` Switchboard
 * does not log the "listening" line the test helper reads the port from), and ready once
 * `GET /health` answers 200.
 */
import { freePort } from '../../test/utils/free-port.js'
import type { ProbeCommands } from '../probe/server-probe.js'
import { compiledPath } from './compile-servers.js'
import { type IpcClient, ipcClient } from './ipc.js'
import { type NodeProcess, startNodeProcess } from './node-process.js'

const PROBE = 'bench/probe/server-probe.ts'
const NODE_FLAGS = ['--expose-gc']
const START_TIMEOUT = 60_000 // ms until /health answers
// Only what Node needs; nothing else of the caller's shell reaches a server.
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG']

/** One column of the results. */
export interface ServerKind {
  readonly key: 'raw' | 'yoga' | 'switchboard' | 'switchboard-pg'
  readonly title: string
  readonly entry: string
  /** Environment beside the common one (e.g. the database of this start). */
  readonly env: Readonly<Record<string, string>>
}

/** The servers the benches compare, by key. */
export const SERVER_KINDS: Record<ServerKind['key'], ServerKind> = {
  raw: { key: 'raw', title: 'raw ws', entry: 'bench/baselines/raw-ws-server.ts', env: {} },
  yoga: {
    key: 'yoga',
    title: 'Yoga + graphql-ws',
    entry: 'bench/baselines/yoga-server.ts',
    env: {},
  },
  switchboard: { key: 'switchboard', title: 'Switchboard', entry: 'src/index.ts', env: {} },
  'switchboard-pg': {
    key: 'switchboard-pg',
    title: 'Switchboard (PG + Redis)',
    entry: 'src/index.ts',
    env: {},
  },
}

/** A server process being measured. */
export interface BenchServer {
  readonly kind: ServerKind
  readonly pid: number
  readonly origin: string
  readonly wsUrl: string
  readonly probe: IpcClient<ProbeCommands>
  readonly process: NodeProcess
  stop(): Promise<void>
}

/** The environment every server gets, Switchboard's limits raised out of the bench's way. */
export function commonEnv(secret: string, port: number): Record<string, string> {
  const inherited = Object.fromEntries(
    INHERITED_ENV.flatMap((name) => {
      const value = process.env[name]
      return value === undefined ? [] : [[name, value]]
    }),
  )
  return {
    ...inherited,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    JWT_SECRET: secret,
    DATA_DIR: 'memory://',
    MAX_CONNECTIONS: '50000',
    MAX_CONNECTIONS_PER_TENANT: '50000',
    PUBLISH_RATE_PER_SECOND: '0',
  }
}

async function waitForHealth(origin: string, child: NodeProcess): Promise<void> {
  const deadline = performance.now() + START_TIMEOUT
  let ended = false
  void child.exited.then(() => {
    ended = true
  })
  while (performance.now() < deadline) {
    if (ended) throw new Error(`exited before serving:\n${child.output()}`)
    try {
      const response = await fetch(`${origin}/health`)
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no /health within ${START_TIMEOUT} ms:\n${child.output()}`)
}

/**
 * Starts `kind` with its probe, both from `compiledDir` (see `compileServers`), and resolves
 * once it serves.
 */
export async function startBenchServer(
  kind: ServerKind,
  secret: string,
  compiledDir: string,
): Promise<BenchServer> {
  const port = await freePort()
  const child = startNodeProcess({
    entry: compiledPath(compiledDir, kind.entry),
    nodeFlags: NODE_FLAGS,
    preload: [compiledPath(compiledDir, PROBE)],
    compiled: true,
    env: { ...commonEnv(secret, port), ...kind.env },
  })
  const origin = `http://127.0.0.1:${port}`
  try {
    await waitForHealth(origin, child)
  } catch (error) {
    await child.stop()
    throw new Error(`${kind.title} failed to start: ${(error as Error).message}`)
  }
  return {
    kind,
    pid: child.pid,
    origin,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    probe: ipcClient<ProbeCommands>(child.child, `${kind.title} probe`),
    process: child,
    stop: () => child.stop(),
  }
}
