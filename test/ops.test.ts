import { execFile } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenVerifier } from '../src/auth/verify-token.js'
import { createHealthRoutes } from '../src/ops/health.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { TEST_SECRET } from './utils/tokens.js'

const run = promisify(execFile)

describe('/health and /ready on a running server', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server?.stop())

  it('/health reports liveness with counts, uptime and version', async () => {
    const response = await fetch(`${server.origin}/health`)
    expect(response.status).toBe(200)
    const body = (await response.json()) as Record<string, unknown>
    expect(body).toMatchObject({ status: 'ok', connections: 0, subscriptions: 0 })
    expect(body['uptime']).toEqual(expect.any(Number))
    expect(body['version']).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('/ready is 200 when the database and the bus answer', async () => {
    const response = await fetch(`${server.origin}/ready`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      status: 'ready',
      draining: false,
      dependencies: { database: 'up', bus: 'up' },
    })
  })
})

describe('readiness when a dependency fails', () => {
  let http: Server
  let origin: string
  let draining = false
  beforeAll(async () => {
    const routes = createHealthRoutes({
      version: '1.2.3',
      counts: () => ({ connections: 3, subscriptions: 5 }),
      checks: {
        database: async () => {},
        bus: () => Promise.reject(new Error('connection refused')),
      },
      draining: () => draining,
    })
    http = createServer((req, res) => {
      void routes(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end()
      })
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())))

  it('/ready is 503 and names the dependency that is down', async () => {
    const response = await fetch(`${origin}/ready`)
    expect(response.status).toBe(503)
    expect(await response.json()).toMatchObject({
      status: 'unavailable',
      dependencies: { database: 'up', bus: 'down' },
    })
  })

  it('/health stays 200 while a dependency is down or the instance drains', async () => {
    draining = true
    const response = await fetch(`${origin}/health`)
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({
      status: 'ok',
      connections: 3,
      subscriptions: 5,
      version: '1.2.3',
    })
    expect((await fetch(`${origin}/ready`)).status).toBe(503)
  })
})

describe('npm run token', () => {
  it('mints a token the server accepts, with the given sub, role and scopes', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/token.ts',
        '--sub',
        'u1',
        '--role',
        'operator',
        '--scope',
        'lot:42',
        '--scope',
        'lot:7',
      ],
      { env: { ...process.env, JWT_SECRET: TEST_SECRET } },
    )
    const viewer = await createTokenVerifier({
      keys: { kind: 'secret', secret: TEST_SECRET, ephemeral: false },
    })(stdout.trim())
    expect(viewer).toMatchObject({ sub: 'u1', role: 'operator' })
    expect([...viewer.scopes]).toEqual(['lot:42', 'lot:7'])
  })

  it('refuses an unknown role with a usage message', async () => {
    const failure = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/token.ts', '--sub', 'u1', '--role', 'root'],
      {
        env: { ...process.env, JWT_SECRET: TEST_SECRET },
      },
    ).catch((error: { code: number; stderr: string }) => error)
    expect(failure).toMatchObject({ code: 1 })
    expect((failure as { stderr: string }).stderr).toContain('--role must be a known role')
  })
})
