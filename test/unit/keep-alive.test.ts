import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { type KeepAlive, startKeepAlive } from '../../src/transport/keep-alive.js'

const INTERVAL = 400 // ms
const SLICE = 100 // ms: four slices per interval

interface Peer {
  readonly socket: WebSocket
  /** When the peer received each ping, ms since the test started. */
  readonly pings: number[]
  closedAt: number | undefined
}

let server: WebSocketServer | undefined
let keepAlive: KeepAlive | undefined
const peers: Peer[] = []

afterEach(async () => {
  keepAlive?.stop()
  for (const { socket } of peers.splice(0)) socket.terminate()
  await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve())
})

describe('keep-alive', () => {
  it('pings each socket once per interval, spread over slices, and cuts only silent peers', async () => {
    const started = performance.now()
    const since = () => performance.now() - started
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise((resolve) => server?.once('listening', resolve))
    const alive = startKeepAlive(server, {
      intervalMs: INTERVAL,
      sliceMs: SLICE,
      onError: (error) => {
        throw error
      },
    })
    keepAlive = alive
    server.on('connection', (socket) => socket.on('pong', () => alive.answered(socket)))
    const { port } = server.address() as AddressInfo
    const connect = async (answers: boolean) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}`, { autoPong: answers })
      const peer: Peer = { socket, pings: [], closedAt: undefined }
      socket.on('ping', () => peer.pings.push(since()))
      socket.on('close', () => {
        peer.closedAt = since()
      })
      await new Promise((resolve, reject) => {
        socket.once('open', resolve)
        socket.once('error', reject)
      })
      peers.push(peer)
      return peer
    }
    const answering = await Promise.all(Array.from({ length: 8 }, () => connect(true)))
    const silent = await Promise.all(Array.from({ length: 8 }, () => connect(false)))
    const connectedAt = since()

    await new Promise((resolve) => setTimeout(resolve, INTERVAL * 3.5))

    for (const peer of answering) {
      expect(peer.closedAt, 'an answering peer stays').toBeUndefined()
      // Three or four pings in three and a half intervals: one per interval.
      expect(peer.pings.length).toBeGreaterThanOrEqual(3)
      expect(peer.pings.length).toBeLessThanOrEqual(4)
    }
    for (const peer of silent) {
      expect(peer.closedAt, 'a silent peer is cut').toBeDefined()
      // Cut at its second ping, within two intervals of connecting (and some timer slack).
      expect((peer.closedAt ?? 0) - connectedAt).toBeLessThan(INTERVAL * 2 + 150)
    }
    // The first pings of the peers fall in different slices, not all at once.
    const firstSlices = new Set(
      answering.map((peer) => Math.floor(((peer.pings[0] ?? 0) - connectedAt) / SLICE)),
    )
    expect(firstSlices.size).toBeGreaterThanOrEqual(3)
  })
})
