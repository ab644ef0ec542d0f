import { type AddressInfo, connect, createServer, type Socket } from 'node:net'

/** A TCP forwarder on 127.0.0.1 that a test can cut, as a failing network or server would. */
export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** Connections being forwarded right now. */
  readonly connections: number
  /** Connections accepted and forwarded since the start. */
  readonly accepted: number
  /**
   * Drops every forwarded connection at once: the client side is reset (`ECONNRESET`), the
   * target side closed (a PostgreSQL backend then rolls back its open transaction).
   */
  cut(): void
  /** From now on, resets each new connection as soon as it arrives, until `accept()`. */
  refuse(): void
  /** Forwards new connections again. */
  accept(): void
  /** Cuts every connection and stops listening. */
  close(): Promise<void>
}

/** Starts forwarding an ephemeral port of 127.0.0.1 to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>()
  let refusing = false
  let accepted = 0

  const server = createServer((client) => {
    if (refusing) {
      client.resetAndDestroy()
      return
    }
    accepted += 1
    const upstream = connect(target)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    for (const socket of pair) {
      socket.on('error', drop)
      socket.on('close', drop)
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo

  const cut = () => {
    for (const pair of [...pairs]) {
      pairs.delete(pair)
      const [client, upstream] = pair
      if (!client.destroyed) client.resetAndDestroy()
      upstream.destroy()
    }
  }
  return {
    host: '127.0.0.1',
    port,
    get connections() {
      return pairs.size
    },
    get accepted() {
      return accepted
    },
    cut,
    refuse() {
      refusing = true
    },
    accept() {
      refusing = false
    },
    close() {
      cut()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
