import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { OPERATOR_CLOSE_CODE } from '../src/transport/connection-registry.js'
import {
  AdminActivityFeedDocument,
  AdminActivityNowDocument,
  AdminChannelsDocument,
  AdminConnectionsDocument,
  type AdminConnectionsQueryVariables,
  AdminOperationsDocument,
  AdminSubscriptionsDocument,
  CloseChannelSubscriptionsDocument,
  DisconnectConnectionDocument,
  DisconnectUserDocument,
  ParkingPositionsDocument,
  StatsUpdatedDocument,
} from './generated/graphql.js'
import { cursorAt, fromStart } from './utils/cursors.js'
import { mustExecute } from './utils/http.js'
import { errorCode, request } from './utils/http-raw.js'
import { createLot, raiseAlert } from './utils/parking-fixtures.js'
import { openRawSocket } from './utils/raw-socket.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { within } from './utils/within.js'
import { connectClient, connected, nextClose, subscribe } from './utils/ws-client.js'

let server: TestServer
let service: string
let admin: string
const clients: Client[] = []

/** A connected graphql-ws client for a user of `role` with `scopes`, disposed after the file. */
async function clientOf(sub: string, role = 'operator', scopes: string[] = []): Promise<Client> {
  const client = connectClient(server.wsUrl, await tokenFor({ sub, role: role as never, scopes }))
  clients.push(client)
  await connected(client)
  return client
}

/** Follows lot `lotId`'s parking channel from its start, so nothing published is missed. */
function followLot(client: Client, lotId: string) {
  return subscribe(client, ParkingPositionsDocument, {
    lotId,
    after: fromStart(`lot:${lotId}:parking`),
  })
}

/** The admin listing of `user`'s connections. */
async function connectionsOf(user: string) {
  const { adminConnections } = await mustExecute(server.url, admin, AdminConnectionsDocument, {
    filter: { user },
  })
  return adminConnections
}

/** Waits until `channel` is followed by `count` subscriptions of this instance. */
async function waitForFollowers(channel: string, count: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const { adminChannels } = await mustExecute(server.url, admin, AdminChannelsDocument, {
        search: channel,
      })
      const found = adminChannels.nodes.find((node) => node.channel === channel)
      expect(found?.subscribers ?? 0).toBe(count)
    },
    { timeout: 10_000, interval: 50 },
  )
}

beforeAll(async () => {
  server = await startTestServer()
  service = await serviceToken()
  admin = await adminToken()
  for (const lot of ['AD1', 'AD2', 'AD3', 'AD4']) await createLot(server.url, service, lot)
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

describe('admin API refusals', () => {
  it.each([
    ['a service token', () => serviceToken(), 'FORBIDDEN'],
    [
      'an operator token',
      () => tokenFor({ sub: 'op-x', role: 'operator', scopes: ['lot:AD1'] }),
      'FORBIDDEN',
    ],
    ['no token', async () => undefined, 'UNAUTHENTICATED'],
  ])('refuses queries and mutations with %s (%s)', async (_what, token, code) => {
    const as = await token()
    const listing = await request(server.url, as, AdminConnectionsDocument, {})
    expect(errorCode(listing.result)).toBe(code)
    expect(listing.result.data).toBeNull()
    for (const [document, variables] of [
      [DisconnectUserDocument, { user: 'anyone', reason: 'nope' }],
      [CloseChannelSubscriptionsDocument, { channel: 'lot:AD1:parking', reason: 'nope' }],
      [AdminActivityNowDocument, {}],
    ] as const) {
      const answer = await request(server.url, as, document as never, variables as never)
      expect(errorCode(answer.result)).toBe(code)
    }
  })

  it('refuses the adminActivity subscription to a non-admin, and leaks no listing', async () => {
    await clientOf('leak-check', 'client')
    const client = await clientOf('op-spy', 'operator', ['lot:AD1'])
    const feed = subscribe(client, AdminActivityFeedDocument, {})
    await feed.waitForEnd()
    expect(JSON.stringify(feed.results)).toContain('FORBIDDEN')
    expect(JSON.stringify(feed.results)).not.toContain('leak-check')
    expect(feed.data.every((data) => data === null || data.adminActivity === undefined)).toBe(true)
  })

  it('checks its arguments', async () => {
    const longReason = await request(server.url, admin, DisconnectUserDocument, {
      user: 'u',
      reason: 'x'.repeat(101),
    })
    expect(errorCode(longReason.result)).toBe('BAD_USER_INPUT')
    const badRole = await request(server.url, admin, AdminConnectionsDocument, {
      filter: { role: 'king' },
    })
    expect(errorCode(badRole.result)).toBe('BAD_USER_INPUT')
    const badChannel = await request(server.url, admin, CloseChannelSubscriptionsDocument, {
      channel: 'no such thing',
      reason: 'typo',
    })
    expect(errorCode(badChannel.result)).toBe('BAD_USER_INPUT')
    const gone = await request(server.url, admin, DisconnectConnectionDocument, {
      id: 'nope-1',
      reason: 'gone',
    })
    expect(errorCode(gone.result)).toBe('NOT_FOUND')
  })
})

describe('admin listings', () => {
  it('lists connections and subscriptions, filtered by user, role and scope, paginated', async () => {
    const alice = await clientOf('list-alice', 'operator', ['lot:AD1', 'lot:AD2'])
    const bob = await clientOf('list-bob', 'client', ['lot:AD2'])
    const bob2 = await clientOf('list-bob', 'client', ['lot:AD2'])
    followLot(alice, 'AD1')
    subscribe(alice, StatsUpdatedDocument, { lotId: 'AD2' })
    followLot(bob, 'AD2')
    followLot(bob2, 'AD2')
    await waitForFollowers('lot:AD1:parking', 1)
    await waitForFollowers('lot:AD2:parking', 2)
    await waitForFollowers('lot:AD2:stats', 1)

    const aliceConnections = await connectionsOf('list-alice')
    expect(aliceConnections.totalCount).toBe(1)
    const [connection] = aliceConnections.nodes
    expect(connection).toMatchObject({
      user: 'list-alice',
      role: 'operator',
      scopes: ['lot:AD1', 'lot:AD2'],
      remoteAddress: expect.stringMatching(/127\.0\.0\.1/),
    })
    expect(Date.parse(connection?.connectedAt ?? '')).toBeLessThanOrEqual(Date.now())
    expect(
      connection?.subscriptions.map(({ rootField, operationName, channels }) => ({
        rootField,
        operationName,
        channels,
      })),
    ).toEqual(
      expect.arrayContaining([
        {
          rootField: 'parkingUpdated',
          operationName: 'ParkingPositions',
          channels: ['lot:AD1:parking'],
        },
        { rootField: 'statsUpdated', operationName: 'StatsUpdated', channels: ['lot:AD2:stats'] },
      ]),
    )

    const byRole = await mustExecute(server.url, admin, AdminConnectionsDocument, {
      filter: { role: 'client', search: 'list-' },
    })
    expect(byRole.adminConnections.nodes.map((node) => node.user)).toEqual(['list-bob', 'list-bob'])
    const byScope = await mustExecute(server.url, admin, AdminConnectionsDocument, {
      filter: { scope: 'lot:AD2', search: 'list-' },
    })
    expect(byScope.adminConnections.totalCount).toBe(3)

    // Pages of one, following endCursor, visit each connection once.
    const seen: string[] = []
    let after: string | null = null
    for (;;) {
      const variables: AdminConnectionsQueryVariables = { filter: { search: 'list-' }, first: 1 }
      if (after) variables.after = after
      const { adminConnections: page } = await mustExecute(
        server.url,
        admin,
        AdminConnectionsDocument,
        variables,
      )
      expect(page.totalCount).toBe(3)
      seen.push(...page.nodes.map((node) => node.id))
      if (!page.hasNextPage) break
      after = page.endCursor
    }
    expect(new Set(seen).size).toBe(3)

    const onAd2 = await mustExecute(server.url, admin, AdminSubscriptionsDocument, {
      channel: 'lot:AD2:parking',
    })
    expect(onAd2.adminSubscriptions.nodes.map((node) => node.user)).toEqual([
      'list-bob',
      'list-bob',
    ])
    const stats = await mustExecute(server.url, admin, AdminSubscriptionsDocument, {
      filter: { user: 'list-alice' },
      rootField: 'statsUpdated',
    })
    expect(stats.adminSubscriptions.totalCount).toBe(1)

    const { adminOperations } = await mustExecute(server.url, admin, AdminOperationsDocument, {})
    expect(adminOperations).toEqual(
      expect.arrayContaining([
        { operationName: 'ParkingPositions', rootField: 'parkingUpdated', subscriptions: 3 },
        { operationName: 'StatsUpdated', rootField: 'statsUpdated', subscriptions: 1 },
      ]),
    )
  })

  it('streams aggregates about once a second: counts, event rates and recent problems', async () => {
    const watcher = connectClient(server.wsUrl, admin)
    clients.push(watcher)
    const feed = subscribe(watcher, AdminActivityFeedDocument, { top: 5 })
    const [first] = await feed.waitForCount(1)
    expect(first?.adminActivity.instance).toMatch(/:\d+$/)
    expect(first?.adminActivity.connections).toBeGreaterThanOrEqual(1)

    // A refused socket and a refused subscription show up as refusals.
    const refused = await openRawSocket(server.wsUrl)
    refused.send({ type: 'connection_init', payload: { token: 'not-a-jwt' } })
    expect((await within(refused.closed, 5_000, 'the refusal')).code).toBe(4401)
    const outsider = await clientOf('activity-outsider', 'operator', ['lot:AD1'])
    await subscribe(outsider, ParkingPositionsDocument, { lotId: 'AD2' }).waitForEnd()

    const before = first?.adminActivity.eventsPublished ?? 0
    await raiseAlert(server.url, service, 'AD1', 'counted')
    await vi.waitFor(
      () => {
        const latest = feed.data.at(-1)?.adminActivity
        expect(latest?.eventsPublished).toBeGreaterThan(before)
        expect(latest?.eventsPerSecond).toBeGreaterThan(0)
        expect(latest?.recentProblems).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              kind: 'REFUSAL',
              code: 'UNAUTHENTICATED',
              remoteAddress: expect.stringMatching(/127\.0\.0\.1/),
            }),
            expect.objectContaining({
              kind: 'REFUSAL',
              code: 'FORBIDDEN',
              user: 'activity-outsider',
              operation: 'ParkingPositions',
            }),
          ]),
        )
      },
      { timeout: 10_000, interval: 100 },
    )
    const count = feed.data.length
    await feed.waitForCount(count + 2, 5_000)
    feed.unsubscribe()
  })
})

describe('admin disconnects', () => {
  it('closes one connection with 4410 and the reason; the client sees both', async () => {
    const victim = await clientOf('dc-one', 'client')
    const closed = nextClose(victim)
    const [connection] = (await connectionsOf('dc-one')).nodes
    const { disconnectConnection } = await mustExecute(
      server.url,
      admin,
      DisconnectConnectionDocument,
      { id: connection?.id ?? '', reason: 'maintenance window' },
    )
    expect(disconnectConnection).toBe(1)
    const { code, reason } = await within(closed, 5_000, 'the close')
    expect(code).toBe(OPERATOR_CLOSE_CODE)
    expect(reason).toBe('Disconnected by an operator: maintenance window')
    expect((await connectionsOf('dc-one')).totalCount).toBe(0)
  })

  it('closes every connection of a user and no other', async () => {
    const first = await clientOf('dc-user', 'client')
    const second = await clientOf('dc-user', 'client')
    const bystander = await clientOf('dc-bystander', 'client')
    const closes = [nextClose(first), nextClose(second)]
    let bystanderClosed = false
    bystander.on('closed', () => {
      bystanderClosed = true
    })
    const { disconnectUser } = await mustExecute(server.url, admin, DisconnectUserDocument, {
      user: 'dc-user',
      reason: 'account suspended',
    })
    expect(disconnectUser).toBe(2)
    for (const close of await within(Promise.all(closes), 5_000, 'both closes')) {
      expect(close).toMatchObject({
        code: OPERATOR_CLOSE_CODE,
        reason: 'Disconnected by an operator: account suspended',
      })
    }
    expect((await connectionsOf('dc-user')).totalCount).toBe(0)
    expect((await connectionsOf('dc-bystander')).totalCount).toBe(1)
    expect(bystanderClosed).toBe(false)
  })

  it("ends a channel's subscriptions with an error; other subscriptions keep receiving", async () => {
    const a = await clientOf('ch-a', 'operator', ['lot:AD3', 'lot:AD4'])
    const b = await clientOf('ch-b', 'operator', ['lot:AD3'])
    const onAd3FromA = followLot(a, 'AD3')
    const onAd4FromA = followLot(a, 'AD4')
    const onAd3FromB = followLot(b, 'AD3')
    await waitForFollowers('lot:AD3:parking', 2)
    await waitForFollowers('lot:AD4:parking', 1)
    let aClosed = false
    a.on('closed', () => {
      aClosed = true
    })

    const { closeChannelSubscriptions } = await mustExecute(
      server.url,
      admin,
      CloseChannelSubscriptionsDocument,
      { channel: 'lot:AD3:parking', reason: 'lot AD3 is being rebuilt' },
    )
    expect(closeChannelSubscriptions).toBe(2)
    for (const ended of [onAd3FromA, onAd3FromB]) {
      await ended.waitForEnd()
      expect(ended.error).toEqual([
        expect.objectContaining({
          message: 'subscription closed by an operator: lot AD3 is being rebuilt',
          extensions: expect.objectContaining({ code: 'CLOSED_BY_OPERATOR' }),
        }),
      ])
    }
    await waitForFollowers('lot:AD3:parking', 0)

    // The same connection's other subscription still streams, and the socket stays open.
    const seq = await raiseAlert(server.url, service, 'AD4', 'still here')
    await vi.waitFor(() => expect(onAd4FromA.data.map((d) => d.parkingUpdated.seq)).toContain(seq))
    expect(aClosed).toBe(false)
    // And a new subscription to the closed channel works: closing is not a ban.
    const again = subscribe(a, ParkingPositionsDocument, {
      lotId: 'AD3',
      after: cursorAt(['lot:AD3:parking', 0]),
    })
    const alert = await raiseAlert(server.url, service, 'AD3', 'back')
    await vi.waitFor(() => expect(again.data.map((d) => d.parkingUpdated.seq)).toContain(alert))
  })
})
