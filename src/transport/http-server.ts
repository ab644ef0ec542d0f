import { readFile } from 'node:fs/promises'
import { createServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { ConfigError, type TlsFiles } from '../config.js'

async function readPem(variable: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read "${path}" (${(error as Error).message})`)
  }
}

/**
 * The server `handler` answers on: HTTPS (and so WSS for WebSockets attached to it) with the
 * PEM certificate chain and key of `tls`, plain HTTP when `tls` is undefined. Rejects with a
 * `ConfigError` naming `TLS_CERT_FILE`/`TLS_KEY_FILE` when a file cannot be read or the pair
 * is not a usable certificate and key.
 */
export async function createHttpServer(
  tls: TlsFiles | undefined,
  handler: RequestListener,
): Promise<Server> {
  if (!tls) return createServer(handler)
  const [cert, key] = await Promise.all([
    readPem('TLS_CERT_FILE', tls.certFile),
    readPem('TLS_KEY_FILE', tls.keyFile),
  ])
  try {
    return createHttpsServer({ cert, key }, handler)
  } catch (error) {
    throw new ConfigError(
      `TLS_CERT_FILE and TLS_KEY_FILE must hold a PEM certificate and its private key (${(error as Error).message})`,
    )
  }
}
