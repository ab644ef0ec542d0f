import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'

/** A local JWKS endpoint serving the public half of one RS256 key it can sign with. */
export interface JwksServer {
  /** `http://127.0.0.1:PORT/.well-known/jwks.json` */
  readonly url: string
  /** Signs `claims` with the served key (RS256, with its `kid`), valid for an hour. */
  sign(claims: JWTPayload): Promise<string>
  /** How many times the key set was fetched. */
  readonly fetches: number
  stop(): Promise<void>
}

const KID = 'test-key-1'

/** Generates an RS256 key pair and serves its public JWK as a key set on 127.0.0.1. */
export async function startJwksServer(): Promise<JwksServer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' }
  const body = JSON.stringify({ keys: [jwk] })
  let fetches = 0
  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end()
      return
    }
    fetches += 1
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get fetches() {
      return fetches
    },
    sign: (claims) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: KID })
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
