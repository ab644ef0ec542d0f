import { print } from 'graphql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeCursor } from '../src/events/cursor.js'
import { ParkingPositionsDocument, type ParkingPositionsSubscription } from './generated/graphql.js'
import { createLot, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { openSse, type SseEvent, type SseStream } from './utils/sse.js'
import { serviceToken, tokenFor } from './utils/tokens.js'

type Position = ParkingPositionsSubscription['parkingUpdated']

let server: TestServer
let service: string
let operator: string
const streams: SseStream[] = []

/** The URL a browser EventSource would open: operation, variables and token in the query. */
function eventSourceUrl(lotId: string, token: string | undefined): string {
  const params = new URLSearchParams({
    query: print(ParkingPositionsDocument),
    variables: JSON.stringify({ lotId }),
    ...(token ? { token } : {}),
  })
  return `${server.url}?${params}`
}

async function open(...args: Parameters<typeof openSse>): Promise<SseStream> {
  const stream = await openSse(...args)
  streams.push(stream)
  return stream
}

const isNext = (event: SseEvent) => event.event === 'next'
const nextCount = (stream: SseStream) => stream.events.filter(isNext).length

/** The typed payload of a `next` event, checked to be a single result without errors. */
function positionOf(event: SseEvent): Position {
  const result = JSON.parse(event.data) as { data?: ParkingPositionsSubscription; errors?: unknown }
  expect(result.errors).toBeUndefined()
  return (result.data as ParkingPositionsSubscription).parkingUpdated
}

async function openStreams(): Promise<number> {
  const response = await fetch(`${server.origin}/health`)
  return ((await response.json()) as { subscriptions: number }).subscriptions
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  operator = await tokenFor({ sub: 'op-s', role: 'operator', scopes: ['lot:S1', 'lot:S2'] })
  await createLot(server.url, service, 'S1')
  await createLot(server.url, service, 'S2')
})

afterAll(async () => {
  for (const stream of streams) stream.close()
  await server?.stop()
})

describe('SSE', () => {
  it('streams typed events over GET with id: set to the cursor, and resumes from Last-Event-ID', async () => {
    await expect.poll(openStreams).toBe(0)
    const url = eventSourceUrl('S1', operator)
    const stream = await open(url)
    expect(stream.status).toBe(200)
    expect(stream.contentType).toMatch(/^text\/event-stream/)
    await probeUntilLive(
      () => nextCount(stream),
      () => raiseAlert(server.url, service, 'S1', 'probe'),
    )
    const live = nextCount(stream)
    for (const n of [1, 2]) await raiseAlert(server.url, service, 'S1', `before ${n}`)
    const received = await stream.waitForEvents(live + 2, isNext)
    for (const event of received) {
      const position = positionOf(event)
      expect(event.id).toBe(position.cursor)
      expect(position.channel).toBe('lot:S1:parking')
      expect(position.__typename).toBe('ParkingAlert')
    }
    const last = positionOf(received.at(-1) as SseEvent)
    expect(last).toMatchObject({ message: 'before 2' })
    expect(stream.lastEventId).toBe(last.cursor)

    // The connection drops; the server lets go of the stream.
    stream.close()
    await expect.poll(openStreams).toBe(0)
    const missed: number[] = []
    for (const n of [1, 2, 3, 4]) {
      missed.push(await raiseAlert(server.url, service, 'S1', `missed ${n}`))
    }

    // EventSource reconnects to the same URL, sending the last id it saw.
    const resumed = await open(url, { headers: { 'last-event-id': stream.lastEventId ?? '' } })
    const replayed = (await resumed.waitForEvents(4, isNext)).map(positionOf)
    expect(replayed.map((p) => p.seq)).toEqual(missed)
    expect(replayed.map((p) => (p.__typename === 'ParkingAlert' ? p.message : ''))).toEqual([
      'missed 1',
      'missed 2',
      'missed 3',
      'missed 4',
    ])
    const liveSeq = await raiseAlert(server.url, service, 'S1', 'live again')
    const all = (await resumed.waitForEvents(5, isNext)).map(positionOf)
    expect(all.map((p) => p.seq)).toEqual([...missed, liveSeq])
    expect(all.map((p) => p.seq)).toEqual([last.seq + 1, ...missed.map((s) => s + 1)])
    resumed.close()
  })

  it('streams over POST with Accept: text/event-stream, as GraphiQL does', async () => {
    const stream = await open(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${operator}` },
      body: JSON.stringify({
        query: print(ParkingPositionsDocument),
        variables: { lotId: 'S2' },
      }),
    })
    expect(stream.status).toBe(200)
    expect(stream.contentType).toMatch(/^text\/event-stream/)
    await probeUntilLive(
      () => nextCount(stream),
      () => raiseAlert(server.url, service, 'S2', 'probe'),
    )
    const before = nextCount(stream)
    const seq = await raiseAlert(server.url, service, 'S2', 'over POST')
    const event = (await stream.waitForEvents(before + 1, isNext)).at(-1) as SseEvent
    expect(positionOf(event)).toMatchObject({ seq, message: 'over POST' })
    expect(event.id).toBe(positionOf(event).cursor)
    stream.close()
  })

  it('answers a stream without a token with UNAUTHENTICATED and completes it', async () => {
    const stream = await open(eventSourceUrl('S1', undefined))
    await stream.ended
    expect(stream.status).toBe(401)
    const [next, complete] = stream.events
    expect(next?.event).toBe('next')
    expect(JSON.parse(next?.data ?? '{}')).toMatchObject({
      errors: [{ extensions: { code: 'UNAUTHENTICATED' } }],
    })
    expect(JSON.parse(next?.data ?? '{}').data ?? null).toBeNull()
    expect(complete?.event).toBe('complete')
  })

  it('answers a stream outside the scopes with FORBIDDEN, streaming nothing of it', async () => {
    const stranger = await tokenFor({ sub: 'x', role: 'client', scopes: ['lot:S2'] })
    const stream = await open(eventSourceUrl('S1', stranger))
    await stream.ended
    expect(stream.events.map((event) => event.event)).toEqual(['next', 'complete'])
    expect(JSON.parse(stream.events[0]?.data ?? '{}')).toMatchObject({
      errors: [{ extensions: { code: 'FORBIDDEN' } }],
    })
    expect(stream.events[0]?.id).toBeUndefined()
  })

  it('ends a stream resumed from a Last-Event-ID ahead of the log with BAD_CURSOR', async () => {
    const ahead = encodeCursor(new Map([['lot:S1:parking', 10_000]]))
    const stream = await open(eventSourceUrl('S1', operator), {
      headers: { 'last-event-id': ahead },
    })
    await stream.ended
    expect(stream.events.map((event) => event.event)).toEqual(['next', 'complete'])
    expect(JSON.parse(stream.events[0]?.data ?? '{}')).toMatchObject({
      errors: [{ extensions: { code: 'BAD_CURSOR' } }],
    })
  })
})
