import { print } from 'graphql'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { RoomMessageDocument, SendRoomMessageDocument } from './generated/graphql.js'
import { type ControlSubscriber, startRoomControl } from './utils/control-subscriber.js'
import { fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken } from './utils/tokens.js'
import { within } from './utils/within.js'
import { connectClient, subscribe } from './utils/ws-client.js'

const INTERVAL = 200 // ms, KEEPALIVE_INTERVAL_MS of the server
// Timers of a loaded 2-core machine fire late; the bound below is 2 intervals plus this.
const SLACK = 250 // ms

let server: TestServer
let service: string
let control: ControlSubscriber

/** `/health` counts of the server. */
async function health(): Promise<{ connections: number; subscriptions: number }> {
  const response = await fetch(`${server.origin}/health`)
  return (await response.json()) as { connections: number; subscriptions: number }
}

async function sendToRoom(room: string, body: string): Promise<number> {
  const { sendRoomMessage } = await mustExecute(server.url, service, SendRoomMessageDocument, {
    input: { room, body },
  })
  return sendRoomMessage.seq
}

beforeAll(async () => {
  server = await startTestServer({ env: { KEEPALIVE_INTERVAL_MS: String(INTERVAL) } })
  service = await serviceToken()
  control = await startRoomControl(server, service)
})

afterEach(async () => {
  await control.expectDelivery()
})

afterAll(async () => {
  await control?.dispose()
  await server?.stop()
})

describe('keep-alive (KEEPALIVE_INTERVAL_MS)', () => {
  it('drops a subscriber that stops answering pings within two intervals', async () => {
    await expect.poll(health).toMatchObject({ connections: 1, subscriptions: 1 })
    // A peer whose pongs never come: `ws` answers pings itself unless told not to.
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', { autoPong: false })
    let pings = 0
    socket.on('ping', () => {
      pings += 1
    })
    const closed = new Promise<{ code: number; at: number }>((resolve) => {
      socket.once('close', (code) => resolve({ code, at: performance.now() }))
    })
    const openedAt = await new Promise<number>((resolve, reject) => {
      socket.once('open', () => resolve(performance.now()))
      socket.once('error', reject)
    })
    const frames: string[] = []
    const acked = new Promise<void>((resolve) => {
      socket.on('message', (data) => {
        frames.push(String(data))
        if (frames.length === 1) resolve()
      })
    })
    socket.send(JSON.stringify({ type: 'connection_init', payload: { token: service } }))
    await acked
    socket.send(
      JSON.stringify({
        id: 'silent',
        type: 'subscribe',
        payload: {
          query: print(RoomMessageDocument),
          variables: { room: 'control', after: fromStart({ kind: 'room', room: 'control' }) },
        },
      }),
    )

    const { code, at } = await within(closed, 10 * INTERVAL, 'the dead peer to be dropped')
    const lifetime = at - openedAt
    console.info(`keep-alive: silent peer dropped ${Math.round(lifetime)} ms after opening`)
    // Cut (no close frame), after one unanswered ping, within two intervals.
    expect(code).toBe(1006)
    expect(pings).toBeGreaterThanOrEqual(1)
    expect(lifetime).toBeGreaterThanOrEqual(INTERVAL - 50)
    expect(lifetime).toBeLessThan(2 * INTERVAL + SLACK)
    // It was a live subscriber until then.
    expect(frames[0]).toBe('{"type":"connection_ack"}')
    expect(frames.some((frame) => frame.includes('"id":"silent","type":"next"'))).toBe(true)
    await expect.poll(health).toMatchObject({ connections: 1, subscriptions: 1 })
  })

  it('keeps a client that answers pings across several intervals, and it keeps receiving', async () => {
    let pings = 0
    const closes: number[] = []
    // A real graphql-ws client over `ws`, which answers pings; this subclass counts them.
    class CountingWebSocket extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(address, protocols)
        this.on('ping', () => {
          pings += 1
        })
      }
    }
    const client = connectClient(server.wsUrl, service, {
      webSocketImpl: CountingWebSocket,
      on: { closed: (event) => closes.push((event as { code: number }).code) },
    })
    const room = 'kept'
    const sub = subscribe(client, RoomMessageDocument, {
      room,
      after: fromStart({ kind: 'room', room }),
    })
    const delivered = async (body: string) => {
      const seq = await sendToRoom(room, body)
      await vi.waitFor(() => expect(sub.data.map((d) => d.roomMessage.seq)).toContain(seq), {
        timeout: 5_000,
      })
    }
    const started = performance.now()
    await delivered('first')
    for (const pingsSeen of [3, 6, 9]) {
      await vi.waitFor(() => expect(pings).toBeGreaterThanOrEqual(pingsSeen), {
        timeout: 10 * INTERVAL * 3,
        interval: INTERVAL / 4,
      })
      await delivered(`after ${pingsSeen} pings`)
    }
    const lived = performance.now() - started
    console.info(`keep-alive: answering client alive ${Math.round(lived)} ms, ${pings} pings`)
    expect(lived).toBeGreaterThan(4 * INTERVAL)
    expect(closes).toEqual([])
    expect(sub.error).toBeUndefined()
    expect(sub.data.map((d) => d.roomMessage.body)).toEqual([
      'first',
      'after 3 pings',
      'after 6 pings',
      'after 9 pings',
    ])
    sub.unsubscribe()
    await client.dispose()
  })
})
