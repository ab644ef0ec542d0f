import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { print } from 'graphql'
import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { ConfigError, loadConfig } from '../src/config.js'
import { createHttpServer } from '../src/transport/http-server.js'
import {
  ParkingPositionsDocument,
  RaiseParkingAlertDocument,
  UpsertLotDocument,
} from './generated/graphql.js'
import { probeUntilLive } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, TEST_SECRET, tokenFor } from './utils/tokens.js'
import { connectClient, connected, subscribe } from './utils/ws-client.js'

const run = promisify(execFile)

/** A throwaway self-signed certificate for localhost and 127.0.0.1, valid one day. */
async function makeCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ])
  return { certFile, keyFile }
}

/** POSTs a GraphQL operation over HTTPS, trusting only `ca`. */
function postOverHttps(
  url: string,
  ca: Buffer,
  token: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        ca,
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString('utf8')),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

describe('TLS', () => {
  let dir: string
  let server: TestServer
  let ca: Buffer
  let port: number
  const clients: Client[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchboard-tls-'))
    const files = await makeCertificate(dir)
    ca = await readFile(files.certFile)
    server = await startTestServer({
      env: { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile },
    })
    port = Number(new URL(server.url).port)
  })

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()))
    await server?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('listens on https, and says so', () => {
    expect(server.url).toBe(`https://127.0.0.1:${port}/graphql`)
  })

  it('serves GraphQL over HTTPS and subscriptions over WSS', async () => {
    const url = `https://127.0.0.1:${port}/graphql`
    const service = await serviceToken()
    const publish = (message: string) =>
      postOverHttps(url, ca, service, {
        query: print(RaiseParkingAlertDocument),
        variables: { input: { lotId: 'T1', level: 'INFO', message } },
      })
    const created = await postOverHttps(url, ca, service, {
      query: print(UpsertLotDocument),
      variables: { input: { lotId: 'T1', name: 'TLS lot', spaces: ['1'] } },
    })
    expect(created.status).toBe(200)
    expect(created.json['errors']).toBeUndefined()

    const TrustingCa = class extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(address, protocols, { ca })
      }
    } as typeof WebSocket
    const operator = await tokenFor({ sub: 'tls-op', role: 'operator', scopes: ['lot:T1'] })
    const client = connectClient(`wss://127.0.0.1:${port}/graphql`, operator, {
      webSocketImpl: TrustingCa,
    })
    clients.push(client)
    await connected(client)
    const positions = subscribe(client, ParkingPositionsDocument, { lotId: 'T1' })
    await probeUntilLive(
      () => positions.data.length,
      () => publish('probe'),
    )
    const before = positions.data.length
    await publish('over tls')
    const data = await positions.waitForCount(before + 1)
    expect(data.at(-1)).toMatchObject({ parkingUpdated: { message: 'over tls' } })
  })

  it('refuses clients that do not trust the certificate, and plain HTTP', async () => {
    const untrusted = connectClient(`wss://127.0.0.1:${port}/graphql`, await serviceToken())
    clients.push(untrusted)
    await expect(connected(untrusted)).rejects.toThrow(/closed before ack/)
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
  })
})

describe('TLS configuration', () => {
  it('needs both files, naming the missing variable', () => {
    const base = { JWT_SECRET: TEST_SECRET }
    expect(loadConfig(base).tls).toBeUndefined()
    expect(() => loadConfig({ ...base, TLS_CERT_FILE: 'cert.pem' })).toThrow(ConfigError)
    expect(() => loadConfig({ ...base, TLS_CERT_FILE: 'cert.pem' })).toThrow(/TLS_KEY_FILE/)
    expect(() => loadConfig({ ...base, TLS_KEY_FILE: 'key.pem' })).toThrow(/TLS_CERT_FILE/)
    expect(
      loadConfig({ ...base, TLS_CERT_FILE: '/a/cert.pem', TLS_KEY_FILE: '/a/key.pem' }).tls,
    ).toEqual({ certFile: '/a/cert.pem', keyFile: '/a/key.pem' })
  })

  it('fails start-up naming the variable when a file is missing or not PEM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchboard-tls-bad-'))
    try {
      const good = await makeCertificate(dir)
      const handler = () => {}
      await expect(
        createHttpServer({ certFile: join(dir, 'missing.pem'), keyFile: good.keyFile }, handler),
      ).rejects.toThrow(/^TLS_CERT_FILE: cannot read/)
      const junk = join(dir, 'junk.pem')
      await writeFile(junk, 'not a key')
      await expect(
        createHttpServer({ certFile: good.certFile, keyFile: junk }, handler),
      ).rejects.toThrow(ConfigError)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
