import { print } from 'graphql'
import type { Client } from 'graphql-ws'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type App, buildApp } from '../src/app.js'
import { signToken } from '../src/auth/sign-token.js'
import { loadConfig } from '../src/config.js'
import { createLogger } from '../src/ops/logger.js'
import {
  ParkingPositionsDocument,
  RaiseParkingAlertDocument,
  RecentEventsDocument,
} from './generated/graphql.js'
import { request } from './utils/http-raw.js'
import { createLot } from './utils/parking-fixtures.js'
import { postgresAvailable } from './utils/services.js'
import { openSse } from './utils/sse.js'
import { makePostgresDatabase, makeTestStore, POSTGRES_ADMIN_URL } from './utils/stores.js'
import { serviceToken, TEST_SECRET, tokenFor } from './utils/tokens.js'
import { connectClient, connected, nextClose, webSocketWithHeaders } from './utils/ws-client.js'

type LogLine = Record<string, unknown> & { msg?: string }

/** A server whose JSON log lines are kept in memory. */
async function startLoggedServer(env: Record<string, string>, level: string) {
  const written: string[] = []
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: level, ...env })
  const logger = createLogger(config.logLevel, {
    destination: { write: (line) => written.push(line) },
  })
  const app: App = await buildApp(config, logger)
  const { port } = await app.start()
  return {
    app,
    written,
    lines: () => written.map((text) => JSON.parse(text) as LogLine),
    url: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
  }
}

describe('logger redaction', () => {
  it('cuts tokens out of URLs, messages and errors, keeping the rest', () => {
    const written: string[] = []
    const logger = createLogger('info', { destination: { write: (line) => written.push(line) } })
    logger.info(
      {
        url: '/graphql?query=%7B__typename%7D&token=aaa.bbb.ccc',
        req: { url: '/x?access_token=ddd' },
      },
      'GET %s',
      '/graphql?token=eee.fff.ggg',
    )
    logger.child({ connectionId: 'c1' }).warn('refused "Bearer hhh.iii.jjj"')
    logger.error({ err: new Error('could not use /graphql?token=kkk.lll.mmm') }, 'failed')
    const text = written.join('')
    for (const secret of ['aaa.bbb.ccc', 'ddd', 'eee.fff.ggg', 'hhh.iii.jjj', 'kkk.lll.mmm']) {
      expect(text).not.toContain(secret)
    }
    const [first, second, third] = written.map((line) => JSON.parse(line) as LogLine)
    expect(first).toMatchObject({
      url: '/graphql?query=%7B__typename%7D&token=[redacted]',
      req: { url: '/x?access_token=[redacted]' },
      msg: 'GET /graphql?token=[redacted]',
    })
    expect(second).toMatchObject({ connectionId: 'c1', msg: 'refused "Bearer [redacted]"' })
    expect(third).toMatchObject({
      err: { message: 'could not use /graphql?token=[redacted]' },
      msg: 'failed',
    })
  })
})

describe('tokens in logs and answers', () => {
  let server: Awaited<ReturnType<typeof startLoggedServer>>
  let removeStore: () => Promise<void>
  const clients: Client[] = []
  /** Every token sent in this suite, accepted or refused. */
  const tokens: string[] = []
  /** Everything the server answered: bodies, SSE events, close reasons, error messages. */
  const answers: string[] = []

  beforeAll(async () => {
    const store = await makeTestStore()
    removeStore = store.remove
    server = await startLoggedServer({ JWT_SECRET: TEST_SECRET, ...store.env }, 'debug')
  })

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()))
    await server?.app.stop()
    await removeStore?.()
  })

  it('are never written to the log nor echoed, accepted or refused, on any transport', async () => {
    const service = await serviceToken()
    await createLot(server.url, service, 'S1')
    const claims = { sub: 'secret-op', role: 'operator', scopes: ['lot:S1'] } as const
    const valid = await tokenFor(claims)
    const expired = await tokenFor({ ...claims, expiresInSeconds: -60 })
    const forged = await signToken('another-secret-0123456789-0123456789-abcdef', claims)
    const malformed = 'eyJub3QiOiJhLWp3dCJ9.c2VjcmV0LWxvb2tpbmc.not-a-signature-0123456789'
    tokens.push(service, valid, expired, forged, malformed)
    const refused = [expired, forged, malformed]
    const query = print(RecentEventsDocument)
    const variables = { channel: 'lot:S1:parking', last: 1 }

    // HTTP: a bearer header, and `?token=` on a GET and on an SSE stream.
    for (const token of refused) {
      const inHeader = await request(server.url, token, RecentEventsDocument, variables)
      expect(inHeader.result.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED')
      answers.push(inHeader.text)
      const params = new URLSearchParams({ query, variables: JSON.stringify(variables), token })
      const inQuery = await fetch(`${server.url}?${params}`, {
        headers: { accept: 'application/graphql-response+json' },
      })
      answers.push(await inQuery.text())
      const sseParams = new URLSearchParams({
        query: print(ParkingPositionsDocument),
        variables: JSON.stringify({ lotId: 'S1' }),
        token,
      })
      const sse = await openSse(`${server.url}?${sseParams}`)
      await sse.ended
      answers.push(...sse.events.map((event) => event.data))
    }

    // WebSocket: connection_init, an Authorization header, `?token=`.
    const ways: Array<(token: string) => Client> = [
      (token) => connectClient(server.wsUrl, token),
      (token) =>
        connectClient(server.wsUrl, undefined, {
          webSocketImpl: webSocketWithHeaders({ Authorization: `Bearer ${token}` }),
        }),
      (token) => connectClient(`${server.wsUrl}?token=${encodeURIComponent(token)}`, undefined),
    ]
    for (const connect of ways) {
      for (const token of refused) {
        const client = connect(token)
        clients.push(client)
        const closed = await nextClose(client)
        expect([4401, 4403]).toContain(closed.code)
        answers.push(closed.reason)
      }
      const accepted = connect(valid)
      clients.push(accepted)
      await connected(accepted)
      await accepted.dispose()
    }

    // A browser page of a refused origin, with its token in the URL.
    await new Promise<void>((resolve) => {
      const socket = new WebSocket(
        `${server.wsUrl}?token=${encodeURIComponent(valid)}`,
        'graphql-transport-ws',
        {
          headers: { origin: 'https://evil.example.net' },
        },
      )
      socket.on('unexpected-response', (_request, response) => {
        answers.push(String(response.statusMessage))
        response.resume()
        resolve()
      })
      socket.on('error', () => resolve())
      socket.on('close', (_code, reason) => {
        answers.push(reason.toString())
        resolve()
      })
      socket.on('open', () => socket.close())
    })

    // Stopping flushes every line about the connections above.
    await server.app.stop()
    const log = server.written.join('')
    expect(server.lines().length).toBeGreaterThan(20)
    const said = answers.join('\n')
    for (const token of tokens) {
      const signature = token.split('.').at(-1) as string
      expect(log).not.toContain(token)
      expect(log).not.toContain(signature)
      expect(said).not.toContain(token)
      expect(said).not.toContain(signature)
    }
  })
})

const hasPostgres = await postgresAvailable(POSTGRES_ADMIN_URL)

// A real unexpected error: the database schema changes under a running instance (someone
// renames the event log table), so every publish fails with an error no code path expects.
describe.skipIf(!hasPostgres)('unexpected errors in production', () => {
  let database: Awaited<ReturnType<typeof makePostgresDatabase>>
  let server: Awaited<ReturnType<typeof startLoggedServer>>
  let service: string
  const clients: Client[] = []

  beforeAll(async () => {
    database = await makePostgresDatabase()
    server = await startLoggedServer(
      {
        NODE_ENV: 'production',
        JWT_SECRET: TEST_SECRET,
        ALLOWED_ORIGINS: 'https://app.example.com',
        DATABASE_URL: database.url,
      },
      'info',
    )
    service = await serviceToken()
    await createLot(server.url, service, 'U1')
    const admin = new pg.Client({ connectionString: database.url })
    await admin.connect()
    try {
      await admin.query('alter table events rename to events_moved_away')
    } finally {
      await admin.end()
    }
  })

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()))
    await server?.app.stop()
    await database?.remove()
  })

  const MASKED = { message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }
  const input = { lotId: 'U1', level: 'INFO', message: 'lost' } as const

  /** The detail clients must never see, and that the log must keep. */
  const DETAIL = /relation "events" does not exist/

  it('masks it for an HTTP client and logs it with detail', async () => {
    const before = server.lines().length
    const { status, text, result } = await request(server.url, service, RaiseParkingAlertDocument, {
      input,
    })
    expect(status).toBe(200)
    expect(result.errors).toHaveLength(1)
    expect(result.errors?.[0]).toMatchObject(MASKED)
    expect(Object.keys(result.errors?.[0]?.extensions ?? {})).toEqual(['code'])
    expect(text).not.toMatch(DETAIL)
    expect(text).not.toMatch(/stack|events_moved_away|\.ts:\d+|node_modules/)

    const logged = server
      .lines()
      .slice(before)
      .filter((line) => line.msg === 'unexpected error')
    expect(logged).toHaveLength(1)
    const err = logged[0]?.['err'] as { message: string; stack: string }
    expect(err.message).toMatch(DETAIL)
    expect(err.stack).toMatch(/\n\s+at /)
    expect(logged[0]?.['level']).toBe(50)
  })

  it('masks it for a WebSocket client too', async () => {
    const client = connectClient(server.wsUrl, service)
    clients.push(client)
    await connected(client)
    const result = await new Promise<unknown>((resolve) => {
      let last: unknown
      client.subscribe(
        { query: print(RaiseParkingAlertDocument), variables: { input } },
        { next: (value) => (last = value), error: resolve, complete: () => resolve(last) },
      )
    })
    const errors = (result as { errors?: unknown[] }).errors ?? (result as unknown[])
    expect(errors).toEqual([
      expect.objectContaining({
        message: MASKED.message,
        extensions: expect.objectContaining(MASKED.extensions),
      }),
    ])
    expect(JSON.stringify(result)).not.toMatch(DETAIL)
    expect(JSON.stringify(result)).not.toMatch(/stack|events_moved_away/)
    await expect
      .poll(() => server.lines().filter((line) => line.msg === 'unexpected error').length)
      .toBe(2)
  })
})
