import { vi } from 'vitest'
import WebSocket from 'ws'
import { createLot, raiseAlert } from '../../test/utils/parking-fixtures.js'
import { startTestServer, type TestServer } from '../../test/utils/server.js'
import { makeTestStore, type TestStore } from '../../test/utils/stores.js'
import { startTcpProxy, type TcpProxy } from '../../test/utils/tcp-proxy.js'
import { serviceToken, tokenFor } from '../../test/utils/tokens.js'
import { within } from '../../test/utils/within.js'
import { createSwitchboardClient, type SwitchboardClient } from '../src/index.js'

/**
 * One Switchboard that a test stops and starts again on the same store (PGlite directory, or
 * PostgreSQL database + Redis prefix under `TEST_STACK=postgres`), with a client kit whose
 * URL follows it. While the server is down the kit is pointed at an endpoint that resets every
 * connection, so it keeps failing and retrying until the test lets it reach the new server.
 */
export interface RestartHarness {
  /** The client under test: hand it to Apollo or urql. */
  readonly kit: SwitchboardClient
  /** The lot whose `parkingUpdated` the test follows; the kit's token may read it. */
  readonly lotId: string
  /** The server currently up. */
  readonly server: TestServer
  /** Close codes the kit saw, in order. */
  readonly closeCodes: readonly number[]
  /** How many times the kit got `connection_ack`. */
  readonly connects: number
  /** Publishes `count` alerts in turn; resolves with their seqs once durable. */
  publish(count: number, label: string): Promise<number[]>
  /**
   * Stops the server (the kit sees 1001), waits until the kit failed at least two reconnect
   * attempts, starts a new server on the same store, publishes `count` alerts to it while the
   * kit still cannot connect, and only then lets the kit reach it. Resolves with the seqs of
   * those alerts.
   */
  restartPublishingWhileDown(count: number): Promise<number[]>
  /** Disposes the kit, stops the server and removes the store. */
  close(): Promise<void>
}

/** Starts a server on a persistent store, creates lot `lotId`, and a kit pointed at it. */
export async function startRestartHarness(lotId: string): Promise<RestartHarness> {
  const store: TestStore = await makeTestStore({ persistent: true })
  let server = await startTestServer({ store })
  const service = await serviceToken()
  await createLot(server.url, service, lotId)
  // Nothing listens behind it while refusing: a stand-in for a server that is down, on a
  // port no other test can take over.
  const down: TcpProxy = await startTcpProxy({ host: '127.0.0.1', port: 9 })
  down.refuse()
  const downUrl = `ws://${down.host}:${down.port}/graphql`

  let url = server.wsUrl
  const closeCodes: number[] = []
  let connects = 0
  let retries = 0
  const kit = createSwitchboardClient({
    url: () => url,
    getToken: () => tokenFor({ sub: 'client-kit', role: 'operator', scopes: [`lot:${lotId}`] }),
    webSocketImpl: WebSocket,
    backoff: { initialDelayMs: 20, maxDelayMs: 200 },
    on: {
      connected: () => {
        connects += 1
      },
      closed: (event) => {
        closeCodes.push((event as { code: number }).code)
      },
    },
    onRetry: () => {
      retries += 1
    },
  })

  const publish = async (count: number, label: string) => {
    const seqs: number[] = []
    for (let i = 1; i <= count; i += 1) {
      seqs.push(await raiseAlert(server.url, service, lotId, `${label} ${i}`))
    }
    return seqs
  }

  return {
    kit,
    lotId,
    get server() {
      return server
    },
    closeCodes,
    get connects() {
      return connects
    },
    publish,
    async restartPublishingWhileDown(count) {
      const closesBefore = closeCodes.length
      url = downUrl
      await server.stop()
      await vi.waitFor(() => {
        if (closeCodes.length === closesBefore) throw new Error('the kit has not seen the close')
      })
      const retriesAtStop = retries
      // Two failed attempts after the first retry: the kit is down and keeps trying.
      await within(
        vi.waitFor(
          () => {
            if (retries < retriesAtStop + 3) throw new Error('waiting for failed reconnects')
          },
          { timeout: 10_000, interval: 10 },
        ),
        11_000,
        'failed reconnect attempts',
      )
      const connectsWhileDown = connects
      server = await startTestServer({ store })
      const seqs = await publish(count, 'while down')
      if (connects !== connectsWhileDown)
        throw new Error('the kit reconnected before the publishes')
      url = server.wsUrl
      return seqs
    },
    async close() {
      await kit.dispose()
      await server.stop()
      await down.close()
      await store.remove()
    },
  }
}

/** `from`, `from + 1`, ..., `to`. */
export const range = (from: number, to: number): number[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)
