import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { freePort } from './free-port.js'

const REDIS_SERVER = 'redis-server'
const READY_TIMEOUT = 10_000 // ms for redis-server to accept connections

/**
 * Why a throwaway Redis cannot be started here (no `redis-server` on PATH), or undefined when
 * it can. Under `CI=true` a missing binary throws: a failure there, never a skip.
 */
export function redisServerUnavailableReason(): string | undefined {
  const probe = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' })
  if (probe.status === 0) return undefined
  const reason = `no usable ${REDIS_SERVER} on PATH (${probe.error?.message ?? probe.stderr})`
  if (process.env['CI'] === 'true') throw new Error(reason)
  return reason
}

/** A `redis-server` child process of this test, on a port of its own, that may be killed. */
export interface RedisProcess {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** Whether the child is running. */
  readonly running: boolean
  /** Kills the server with SIGKILL, as a crash would, and waits for it to exit. */
  kill(): Promise<void>
  /** Starts it again on the same port (empty: it persists nothing); resolves once it accepts. */
  restart(): Promise<void>
}

/** Spawns redis-server on `port`; resolves once it logs that it accepts connections. */
function spawnRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      tmpdir(),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  // Should the test worker exit without its afterAll, the server must not outlive it.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  child.once('exit', () => process.off('exit', killOnExit))
  return new Promise((resolve, reject) => {
    let output = ''
    const fail = (why: string) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`redis-server on port ${port} ${why}; output: ${output.slice(-2_000)}`))
    }
    const timer = setTimeout(() => fail('did not become ready'), READY_TIMEOUT)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve(child)
      }
    }
    const onExit = (code: number | null) => fail(`exited (code ${code})`)
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('error', (error) => fail(`failed to start: ${error.message}`))
    child.once('exit', onExit)
  })
}

/**
 * Starts a throwaway `redis-server` on a free port of 127.0.0.1, persisting nothing. Kill it
 * (or let `afterAll` call `kill()`) when done: it is never the shared Redis.
 */
export async function startRedisProcess(): Promise<RedisProcess> {
  let lastError: unknown
  // The port is free when picked but could be taken before redis binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort()
    try {
      let child: ChildProcess | undefined = await spawnRedis(port)
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        get running() {
          return child !== undefined
        },
        async kill() {
          const current = child
          if (!current) return
          child = undefined
          if (current.exitCode !== null || current.signalCode !== null) return
          await new Promise<void>((resolve) => {
            current.once('exit', () => resolve())
            current.kill('SIGKILL')
          })
        },
        async restart() {
          if (child) throw new Error('redis-server is already running')
          child = await spawnRedis(port)
        },
      }
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}
