import { type App, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/ops/logger.js'
import { makeTestStore, type TestStore } from './stores.js'
import { TEST_SECRET } from './tokens.js'

export interface TestServer {
  readonly app: App
  /** `http://127.0.0.1:PORT/graphql` */
  readonly url: string
  /** `ws://127.0.0.1:PORT/graphql` */
  readonly wsUrl: string
  /** `http://127.0.0.1:PORT` */
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
  const app = await buildApp(config, createLogger(config.logLevel))
  const { port } = await app.start()
  const origin = `http://127.0.0.1:${port}`
  return {
    app,
    url: `${origin}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    origin,
    async stop() {
      await app.stop()
      if (!store) await ownStore.remove()
    },
  }
}
