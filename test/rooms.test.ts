import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { channelName } from '../src/events/channels.js'
import { encodeCursor } from '../src/events/cursor.js'
import {
  RoomHistoryDocument,
  RoomMessageDocument,
  SendRoomMessageDocument,
  SendRoomMessagesDocument,
} from './generated/graphql.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
let ann: string
let ben: string
let outsider: string
let benClient: Client
let outsiderClient: Client

/**
 * A cursor at `seq` of a room: a message sent right after `subscribe()` is replayed even if
 * the server was still setting the stream up.
 */
const roomCursor = (room: string, seq: number) =>
  encodeCursor(new Map([[channelName({ kind: 'room', room }), seq]]))

const codeOf = (result: { errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }) =>
  result.errors?.[0]?.extensions?.['code']

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  ann = await tokenFor({ sub: 'ann', role: 'client', scopes: ['room:lobby'] })
  ben = await tokenFor({ sub: 'ben', role: 'client', scopes: ['room:lobby', 'room:ops'] })
  outsider = await tokenFor({ sub: 'eve', role: 'client', scopes: ['room:ops'] })
  benClient = connectClient(server.wsUrl, ben)
  outsiderClient = connectClient(server.wsUrl, outsider)
})

afterAll(async () => {
  await benClient?.dispose()
  await outsiderClient?.dispose()
  await server?.stop()
})

describe('rooms', () => {
  it("delivers members' messages in the envelope, `from` being the sender's token", async () => {
    const sub = subscribe(benClient, RoomMessageDocument, {
      room: 'lobby',
      after: roomCursor('lobby', 0),
    })
    const sent = await mustExecute(server.url, ann, SendRoomMessageDocument, {
      input: { room: 'lobby', body: 'hello', meta: { from: 'mallory', mentions: ['ben'] } },
    })
    expect(sent.sendRoomMessage).toMatchObject({ channel: 'room:lobby', seq: 1, from: 'ann' })
    await mustExecute(server.url, service, SendRoomMessageDocument, {
      input: { room: 'lobby', body: 'system notice' },
    })
    const messages = (await sub.waitForCount(2)).map((d) => d.roomMessage)
    sub.unsubscribe()
    expect(messages[0]).toMatchObject({
      channel: 'room:lobby',
      seq: 1,
      from: 'ann',
      room: 'lobby',
      ts: sent.sendRoomMessage.ts,
      body: 'hello',
      meta: { from: 'mallory', mentions: ['ben'] },
    })
    expect(messages[1]).toMatchObject({
      seq: 2,
      from: 'backend-1',
      body: 'system notice',
      meta: null,
    })
    for (const message of messages) expect(message.cursor).toMatch(/^c1\./)
  })

  it('refuses non-members: no subscription, no sending, no history', async () => {
    const sub = subscribe(outsiderClient, RoomMessageDocument, { room: 'lobby' })
    await sub.waitForEnd()
    expect(sub.data).toEqual([])
    expect(sub.results[0]?.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN')
    const sendResult = await execute(server.url, outsider, SendRoomMessageDocument, {
      input: { room: 'lobby', body: 'let me in' },
    })
    expect(codeOf(sendResult)).toBe('FORBIDDEN')
    const history = await execute(server.url, outsider, RoomHistoryDocument, { room: 'lobby' })
    expect(codeOf(history)).toBe('FORBIDDEN')
    expect(history.data).toBeNull()
    // The refused send appended nothing.
    const { roomHistory } = await mustExecute(server.url, ben, RoomHistoryDocument, {
      room: 'lobby',
    })
    expect(roomHistory.map((m) => m.body)).toEqual(['hello', 'system notice'])
  })

  it("serves history whose last cursor resumes the room's stream without a gap", async () => {
    const { roomHistory } = await mustExecute(server.url, ann, RoomHistoryDocument, {
      room: 'lobby',
      last: 1,
    })
    expect(roomHistory.map((m) => [m.seq, m.body])).toEqual([[2, 'system notice']])
    const sub = subscribe(benClient, RoomMessageDocument, {
      room: 'lobby',
      after: roomHistory[0]?.cursor,
    })
    await mustExecute(server.url, ann, SendRoomMessageDocument, {
      input: { room: 'lobby', body: 'after history' },
    })
    const [next] = await sub.waitForCount(1)
    sub.unsubscribe()
    expect(next?.roomMessage).toMatchObject({ seq: 3, body: 'after history', from: 'ann' })
  })

  it('validates the room, the body and the size of meta', async () => {
    const cases = [
      { room: 'lobby', body: '' },
      { room: 'lobby', body: '   ' },
      { room: 'lobby', body: 'x'.repeat(4_001) },
      { room: 'lobby', body: 'big meta', meta: { blob: 'x'.repeat(8_200) } },
      { room: 'lob:by', body: 'bad room' },
    ]
    for (const input of cases) {
      const result = await execute(server.url, service, SendRoomMessageDocument, { input })
      expect(codeOf(result), input.body.slice(0, 20)).toBe('BAD_USER_INPUT')
    }
    const longest = await mustExecute(server.url, ann, SendRoomMessageDocument, {
      input: { room: 'lobby', body: 'y'.repeat(4_000), meta: [1, 'two', { three: 3 }] },
    })
    expect(longest.sendRoomMessage.meta).toEqual([1, 'two', { three: 3 }])
  })

  it('appends a batch as one run of consecutive seqs, in order, beside concurrent sends', async () => {
    const room = 'bulk'
    const member = await tokenFor({ sub: 'bulk-reader', role: 'client', scopes: [`room:${room}`] })
    const reader = connectClient(server.wsUrl, member)
    const sub = subscribe(reader, RoomMessageDocument, { room, after: roomCursor(room, 0) })
    const batch = (name: string) =>
      mustExecute(server.url, service, SendRoomMessagesDocument, {
        input: { room, messages: Array.from({ length: 50 }, (_, i) => ({ body: `${name}${i}` })) },
      })
    const single = (body: string) =>
      mustExecute(server.url, service, SendRoomMessageDocument, { input: { room, body } })
    const [a, , b] = await Promise.all([batch('a'), single('x'), batch('b'), single('y')])

    // Each batch answers its messages in order, on seqs that follow each other.
    for (const [name, result] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const sent = result.sendRoomMessages
      expect(sent.map((m) => m.body)).toEqual(Array.from({ length: 50 }, (_, i) => `${name}${i}`))
      const first = sent[0]?.seq ?? 0
      expect(sent.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => first + i))
      expect(sent.every((m) => m.from === 'backend-1')).toBe(true)
    }
    // The room's log holds all 102 with no gap, and a subscriber gets them in that order.
    const received = (await sub.waitForCount(102)).map((d) => d.roomMessage)
    sub.unsubscribe()
    await reader.dispose()
    expect(received.map((m) => m.seq)).toEqual(Array.from({ length: 102 }, (_, i) => i + 1))
    const bySeq = new Map(received.map((m) => [m.seq, m.body]))
    for (const sent of [...a.sendRoomMessages, ...b.sendRoomMessages]) {
      expect(bySeq.get(sent.seq)).toBe(sent.body)
    }
  })
})
