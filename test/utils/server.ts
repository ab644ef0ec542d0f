import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type App, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/ops/logger.js'
import { TEST_SECRET } from './tokens.js'

export interface TestServer {
  readonly app: App
  /** `http://127.0.0.1:PORT/graphql` */
  readonly url: string
  /** `ws://127.0.0.1:PORT/graphql` */
  readonly wsUrl: string
  /** `http://127.0.0.1:PORT` */
  readonly origin: string
  readonly dataDir: string
  stop(): Promise<void>
}

export interface TestServerOptions {
  /** Reuse a data directory (restart tests); a fresh temporary one by default. */
  readonly dataDir?: string
  /** Extra environment, e.g. `STATS_INTERVAL_MS`. */
  readonly env?: Readonly<Record<string, string>>
  /**
   * Verify tokens with `TEST_SECRET` (default true). False leaves `JWT_SECRET` unset, for a
   * server given `JWT_JWKS_URL` in `env` (the config refuses both at once).
   */
  readonly withTestSecret?: boolean
}

/** A fresh temporary directory for an embedded database; removed by `removeDataDir`. */
export function makeDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'switchboard-test-'))
}

export function removeDataDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true })
}

/**
 * Starts a real Switchboard on an ephemeral port of 127.0.0.1, on its own embedded database,
 * verifying tokens signed with `TEST_SECRET`. `stop()` shuts it down and, when the data
 * directory was made here, removes it.
 */
export async function startTestServer({
  dataDir,
  env = {},
  withTestSecret = true,
}: TestServerOptions = {}): Promise<TestServer> {
  const dir = dataDir ?? (await makeDataDir())
  const config = loadConfig({
    ...(withTestSecret ? { JWT_SECRET: TEST_SECRET } : {}),
    DATA_DIR: dir,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    STATS_INTERVAL_MS: '50',
    ...env,
  })
  const app = await buildApp(config, createLogger(config.logLevel))
  const { port } = await app.start()
  const origin = `http://127.0.0.1:${port}`
  return {
    app,
    url: `${origin}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    origin,
    dataDir: dir,
    async stop() {
      await app.stop()
      if (!dataDir) await removeDataDir(dir)
    },
  }
}
