import { print } from 'graphql'
import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ParkingPositionsDocument } from './generated/graphql.js'
import { postRaw } from './utils/http-raw.js'
import { createLot, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { type Frame, openRawSocket, type RawSocket } from './utils/raw-socket.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { serviceToken } from './utils/tokens.js'
import { connectClient, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
const sockets: RawSocket[] = []
const clients: Client[] = []

/** A raw socket past `connection_init`, closed after the file. */
async function initialisedSocket(): Promise<RawSocket> {
  const socket = await openRawSocket(server.wsUrl)
  sockets.push(socket)
  await socket.init({ token: service })
  return socket
}

const POSITIONS = print(ParkingPositionsDocument)
const errorsOf = (frame: Frame) => frame.payload as Array<{ message: string; extensions?: object }>

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  await createLot(server.url, service, 'X1')
})

afterAll(async () => {
  await Promise.all(sockets.map((socket) => socket.close()))
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('bad input over WebSocket', () => {
  it('closes a socket that sends malformed JSON with 4400; other sockets keep receiving', async () => {
    const client = connectClient(server.wsUrl, service)
    clients.push(client)
    const bystander = subscribe(client, ParkingPositionsDocument, { lotId: 'X1' })
    await probeUntilLive(
      () => bystander.data.length,
      () => raiseAlert(server.url, service, 'X1', 'probe'),
    )

    const socket = await initialisedSocket()
    socket.send('{"type": "subscribe", "id": ')
    expect(await socket.closed).toEqual({ code: 4400, reason: 'Invalid message received' })

    const before = bystander.data.length
    const seq = await raiseAlert(server.url, service, 'X1', 'after the bad frame')
    const after = await bystander.waitForCount(before + 1)
    expect(after.at(-1)?.parkingUpdated).toMatchObject({ seq, message: 'after the bad frame' })
    expect(bystander.error).toBeUndefined()
    bystander.unsubscribe()
  })

  it.each([
    ['an unknown message type', { type: 'gimme_data', id: '1' }],
    ['a subscribe without an id', { type: 'subscribe', payload: { query: POSITIONS } }],
    ['a subscribe without a query', { type: 'subscribe', id: '1', payload: {} }],
    ['a JSON value that is not a message', [1, 2, 3]],
  ])('closes a socket that sends %s with 4400', async (_what, frame) => {
    const socket = await initialisedSocket()
    socket.send(JSON.stringify(frame))
    expect((await socket.closed).code).toBe(4400)
  })

  it('closes a socket that subscribes before connection_init with 4401', async () => {
    const socket = await openRawSocket(server.wsUrl)
    sockets.push(socket)
    socket.send({ type: 'subscribe', id: '1', payload: { query: POSITIONS, variables: {} } })
    expect(await socket.closed).toEqual({ code: 4401, reason: 'Unauthorized' })
    expect(socket.frames).toEqual([])
  })

  it('refuses a socket asking only for the legacy graphql-ws subprotocol', async () => {
    await expect(openRawSocket(server.wsUrl, { protocol: 'graphql-ws' })).rejects.toThrow(
      /no subprotocol/,
    )
  })

  it('answers invalid variables with an error message naming them; the socket stays usable', async () => {
    const socket = await initialisedSocket()
    socket.send({
      id: 'wrong-type',
      type: 'subscribe',
      payload: { query: POSITIONS, variables: { lotId: { not: 'an id' } } },
    })
    socket.send({
      id: 'missing',
      type: 'subscribe',
      payload: { query: POSITIONS, variables: {} },
    })
    const wrongType = await socket.waitFor((frame) => frame.id === 'wrong-type')
    expect(wrongType.type).toBe('error')
    expect(errorsOf(wrongType)[0]?.message).toMatch(/Variable "\$lotId" got invalid value/)
    const missing = await socket.waitFor((frame) => frame.id === 'missing')
    expect(missing.type).toBe('error')
    expect(errorsOf(missing)[0]?.message).toMatch(
      /Variable "\$lotId" of required type "ID!" was not provided/,
    )

    // Same socket, same ids reused: a valid subscription works.
    socket.send({
      id: 'wrong-type',
      type: 'subscribe',
      payload: { query: POSITIONS, variables: { lotId: 'X1' } },
    })
    const delivered = () =>
      socket.frames.filter((frame) => frame.id === 'wrong-type' && frame.type === 'next').length
    await probeUntilLive(delivered, () => raiseAlert(server.url, service, 'X1', 'probe'))
    const next = socket.frames.find((frame) => frame.id === 'wrong-type' && frame.type === 'next')
    expect(next?.payload).toMatchObject({ data: { parkingUpdated: { channel: 'lot:X1:parking' } } })
  })

  it('answers a query with a syntax error with an error message', async () => {
    const socket = await initialisedSocket()
    socket.send({
      id: 'syntax',
      type: 'subscribe',
      payload: { query: 'subscription { parkingUpdated(lotId: "X1" { seq } }' },
    })
    const answer = await socket.waitFor((frame) => frame.id === 'syntax')
    expect(answer.type).toBe('error')
    expect(errorsOf(answer)[0]?.message).toMatch(/^Syntax Error/)
    expect(errorsOf(answer)[0]?.extensions).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED' })
  })

  it('answers an unknown field with a validation error naming it', async () => {
    const socket = await initialisedSocket()
    socket.send({
      id: 'unknown',
      type: 'subscribe',
      payload: { query: 'subscription { parkingUpdated(lotId: "X1") { ... on Event { nope } } }' },
    })
    const answer = await socket.waitFor((frame) => frame.id === 'unknown')
    expect(answer.type).toBe('error')
    expect(errorsOf(answer)[0]?.message).toBe('Cannot query field "nope" on type "Event".')
    expect(errorsOf(answer)[0]?.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED' })
    // Still open: a ping is answered.
    socket.send({ type: 'ping' })
    await socket.waitFor((frame) => frame.type === 'pong')
  })
})

describe('bad input over HTTP', () => {
  const auth = () => ({ authorization: `Bearer ${service}` })

  it('answers a malformed JSON body with 400 and a clear error', async () => {
    const { status, result } = await postRaw(server.url, '{"query": "{ __typename }"', auth())
    expect(status).toBe(400)
    expect(result.errors?.[0]?.message).toBe('POST body sent invalid JSON.')
    expect(result.data).toBeUndefined()
  })

  it('answers variables of the wrong type with 400 and an error naming the variable', async () => {
    const { status, result } = await postRaw(
      server.url,
      JSON.stringify({
        query: 'query ($lotId: ID!) { lot(lotId: $lotId) { name } }',
        variables: { lotId: { nested: true } },
      }),
      auth(),
    )
    expect(status).toBe(400)
    expect(result.errors?.[0]?.message).toMatch(/^Variable "\$lotId" got invalid value/)
    expect(result.data).toBeUndefined()

    const enumWrong = await postRaw(
      server.url,
      JSON.stringify({
        query: 'mutation ($input: SetSpaceStateInput!) { setSpaceState(input: $input) { seq } }',
        variables: { input: { lotId: 'X1', spaceNumber: '1', state: 'PARKED' } },
      }),
      auth(),
    )
    expect(enumWrong.status).toBe(400)
    expect(enumWrong.result.errors?.[0]?.message).toMatch(
      /"PARKED".*SpaceState|SpaceState.*"PARKED"/,
    )
  })

  it('answers a query with a syntax error or an unknown field with 400', async () => {
    const syntax = await postRaw(server.url, JSON.stringify({ query: '{ lot(' }), auth())
    expect(syntax.status).toBe(400)
    expect(syntax.result.errors?.[0]?.message).toMatch(/^Syntax Error/)
    const unknown = await postRaw(server.url, JSON.stringify({ query: '{ nope }' }), auth())
    expect(unknown.status).toBe(400)
    expect(unknown.result.errors?.[0]?.message).toBe('Cannot query field "nope" on type "Query".')
  })

  it('answers a body without a query with 400', async () => {
    const { status, result } = await postRaw(server.url, JSON.stringify({ variables: {} }), auth())
    expect(status).toBe(400)
    expect(result.errors?.[0]?.message).toMatch(/query/i)
  })
})
