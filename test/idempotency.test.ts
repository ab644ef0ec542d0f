import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  IssueTicketOnceDocument,
  ParkingPositionsDocument,
  type ParkingPositionsSubscription,
  RaiseParkingAlertOnceDocument,
  SetSpaceStateOnceDocument,
} from './generated/graphql.js'
import { execute, mustExecute } from './utils/http.js'
import { createLot, headOf, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { makeTestStore, TEST_STACK, type TestStore } from './utils/stores.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, type Subscription, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
let admin: string
const clients: Client[] = []

let keyCounter = 0
/** A key no other test uses. */
const newKey = () => `key-${process.pid}-${++keyCounter}`

function raiseOnce(url: string, token: string, lotId: string, message: string, key: string) {
  return execute(url, token, RaiseParkingAlertOnceDocument, {
    input: { lotId, level: 'INFO', message },
    idempotencyKey: key,
  })
}

/** A live subscriber to `lotId` on `target`, proven live by a probe it received. */
async function liveSubscriber(
  target: TestServer,
  lotId: string,
): Promise<Subscription<ParkingPositionsSubscription>> {
  const client = connectClient(target.wsUrl, admin)
  clients.push(client)
  const sub = subscribe(client, ParkingPositionsDocument, { lotId })
  await probeUntilLive(
    () => sub.data.length,
    () => raiseAlert(target.url, service, lotId, 'probe'),
  )
  return sub
}

/**
 * What `sub` received after its probes, up to and including the `marker` alert published now:
 * every event published before the marker has arrived once it has.
 */
async function receivedUpToMarker(
  target: TestServer,
  sub: Subscription<ParkingPositionsSubscription>,
  lotId: string,
): Promise<string[]> {
  const markerSeq = await raiseAlert(target.url, service, lotId, 'marker')
  const seqs = () => sub.data.map((d) => d.parkingUpdated.seq)
  await expect.poll(() => seqs().includes(markerSeq), { timeout: 10_000 }).toBe(true)
  return sub.data
    .map((d) => d.parkingUpdated)
    .filter((event) => 'message' in event && event.message !== 'probe')
    .map((event) => ('message' in event ? (event.message ?? '') : ''))
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  admin = await adminToken()
  for (const lotId of ['I1', 'I2', 'I3', 'I4', 'I5']) await createLot(server.url, service, lotId)
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('publish with idempotencyKey', () => {
  it('answers a retry with the original result, and subscribers see the event once', async () => {
    const sub = await liveSubscriber(server, 'I1')
    const key = newKey()
    const first = await raiseOnce(server.url, service, 'I1', 'once', key)
    const retry = await raiseOnce(server.url, service, 'I1', 'once', key)
    expect(first.errors).toBeUndefined()
    expect(retry).toEqual(first)

    expect(await receivedUpToMarker(server, sub, 'I1')).toEqual(['once', 'marker'])
    sub.unsubscribe()
  })

  it('gives back what the first attempt generated (a default ticket id), not a new one', async () => {
    const key = newKey()
    const variables = { input: { lotId: 'I2', vehiclePlate: 'AB-123' }, idempotencyKey: key }
    const first = await mustExecute(server.url, service, IssueTicketOnceDocument, variables)
    const retry = await mustExecute(server.url, service, IssueTicketOnceDocument, variables)
    expect(retry).toEqual(first)
    expect(await headOf(server.url, admin, 'I2')).toBe(first.issueTicket.seq)
  })

  it('turns concurrent identical publishes into one event with one shared result', async () => {
    const sub = await liveSubscriber(server, 'I3')
    const key = newKey()
    const results = await Promise.all(
      Array.from({ length: 8 }, () => raiseOnce(server.url, service, 'I3', 'concurrent', key)),
    )
    for (const result of results) {
      expect(result.errors).toBeUndefined()
      expect(result).toEqual(results[0])
    }
    expect(await receivedUpToMarker(server, sub, 'I3')).toEqual(['concurrent', 'marker'])
    sub.unsubscribe()
  })

  it('refuses the key with another input or mutation as BAD_USER_INPUT, publishing nothing', async () => {
    const key = newKey()
    const first = await raiseOnce(server.url, service, 'I4', 'original', key)
    const head = first.data?.raiseParkingAlert.seq

    const otherInput = await raiseOnce(server.url, service, 'I4', 'changed', key)
    expect(otherInput.data).toBeNull()
    expect(otherInput.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'idempotencyKey',
    })

    const otherMutation = await execute(server.url, service, SetSpaceStateOnceDocument, {
      input: { lotId: 'I4', spaceNumber: '1', state: 'OCCUPIED' },
      idempotencyKey: key,
    })
    expect(otherMutation.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT')
    expect(await headOf(server.url, admin, 'I4')).toBe(head)
  })

  it('keeps keys per token subject: another backend may use the same key', async () => {
    const key = newKey()
    const other = await tokenFor({ sub: 'backend-2', role: 'service' })
    const mine = await raiseOnce(server.url, service, 'I5', 'same key', key)
    const theirs = await raiseOnce(server.url, other, 'I5', 'same key', key)
    expect(theirs.data?.raiseParkingAlert.seq).toBe((mine.data?.raiseParkingAlert.seq ?? 0) + 1)
  })

  it('does not use up the key when the publish fails: the retry publishes', async () => {
    const key = newKey()
    const failed = await raiseOnce(server.url, service, 'I-late', 'after failure', key)
    expect(failed.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND')
    await createLot(server.url, service, 'I-late')
    const retried = await raiseOnce(server.url, service, 'I-late', 'after failure', key)
    expect(retried.errors).toBeUndefined()
    expect(retried.data?.raiseParkingAlert.seq).toBe(await headOf(server.url, admin, 'I-late'))
  })

  it('refuses an empty key as BAD_USER_INPUT', async () => {
    const result = await raiseOnce(server.url, service, 'I5', 'empty key', '')
    expect(result.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'idempotencyKey',
    })
  })
})

describe('the idempotency window', () => {
  let short: TestServer

  beforeAll(async () => {
    short = await startTestServer({ env: { IDEMPOTENCY_WINDOW_MS: '1000' } })
    await createLot(short.url, service, 'W1')
  })

  afterAll(async () => {
    await short?.stop()
  })

  it('frees the key once the window has passed: the same publish happens again', async () => {
    const key = newKey()
    const first = await raiseOnce(short.url, service, 'W1', 'windowed', key)
    const firstSeq = first.data?.raiseParkingAlert.seq
    expect(firstSeq).toBeGreaterThan(0)
    // Retries answer the first result until the window ends, then the publish happens anew.
    await expect
      .poll(
        async () =>
          (await raiseOnce(short.url, service, 'W1', 'windowed', key)).data?.raiseParkingAlert.seq,
        { timeout: 10_000, interval: 100 },
      )
      .toBe((firstSeq ?? 0) + 1)
  })
})

describe.runIf(TEST_STACK === 'postgres')('across instances sharing one database', () => {
  let store: TestStore
  const instances: TestServer[] = []

  beforeAll(async () => {
    store = await makeTestStore()
    instances.push(await startTestServer({ store }), await startTestServer({ store }))
    await createLot(instances[0]?.url as string, service, 'X1')
  })

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()))
    await store?.remove()
  })

  it('publishes once when the same retry lands on several instances at the same time', async () => {
    const [a, b] = instances as [TestServer, TestServer]
    const watcher = await liveSubscriber(b, 'X1')
    const key = newKey()
    const results = await Promise.all(
      [a, b, a, b, a, b].map((target) => raiseOnce(target.url, service, 'X1', 'clustered', key)),
    )
    for (const result of results) {
      expect(result.errors).toBeUndefined()
      expect(result).toEqual(results[0])
    }
    expect(await receivedUpToMarker(a, watcher, 'X1')).toEqual(['clustered', 'marker'])
    watcher.unsubscribe()
  })
})
