import { type App, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/ops/logger.js'
import { makeTestStore, type TestStore } from './stores.js'
import { TEST_SECRET } from './tokens.js'

export interface TestServer {
  readonly app: App
  /** `http://127.0.0.1:PORT/graphql` (`https://` with `TLS_*` in `env`) */
  readonly url: string
  /** `ws://127.0.0.1:PORT/graphql` (`wss://` with TLS) */
  readonly wsUrl: string
  /** `http://127.0.0.1:PORT` (`https://` with TLS) */
  readonly origin: string
  stop(): Promise<void>
}

export interface TestServerOptions {
  /** Where to keep state (restart tests share one); a fresh store, removed at stop, by default. */
  readonly store?: TestStore
  /** Extra environment, e.g. `STATS_INTERVAL_MS`. */
  readonly env?: Readonly<Record<string, string>>
  /**
   * Verify tokens with `TEST_SECRET` (default true). False leaves `JWT_SECRET` unset, for a
   * server given `JWT_JWKS_URL` in `env` (the config refuses both at once).
   */
  readonly withTestSecret?: boolean
  /** Where the server's log lines go (stdout by default), for tests that read them. */
  readonly logDestination?: { write(line: string): void }
}

/**
 * Starts a real Switchboard on an ephemeral port of 127.0.0.1, on a store of the current test
 * stack (see `TEST_STACK`), verifying tokens signed with `TEST_SECRET`. `stop()` shuts it
 * down and removes the store when it was made here.
 */
export async function startTestServer({
  store,
  env = {},
  withTestSecret = true,
  logDestination,
}: TestServerOptions = {}): Promise<TestServer> {
  const ownStore = store ?? (await makeTestStore())
  const config = loadConfig({
    ...(withTestSecret ? { JWT_SECRET: TEST_SECRET } : {}),
    ...ownStore.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    STATS_INTERVAL_MS: '50',
    ...env,
  })
  const logger = createLogger(
    config.logLevel,
    logDestination ? { destination: logDestination } : undefined,
  )
  const app = await buildApp(config, logger)
  // What the server says it listens on: https when TLS is configured.
  const { url } = await app.start()
  return {
    app,
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    origin: new URL(url).origin,
    async stop() {
      await app.stop()
      if (!store) await ownStore.remove()
    },
  }
}
