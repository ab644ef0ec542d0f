import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { RoomMessageDocument, SendRoomMessageDocument } from './generated/graphql.js'
import { execute, mustExecute } from './utils/http.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { makeTestStore, TEST_STACK, type TestStore } from './utils/stores.js'
import { adminToken, serviceToken, tokenFor } from './utils/tokens.js'
import { connectClient, nextClose, subscribe } from './utils/ws-client.js'

const REVOKE = /* GraphQL */ `
  mutation Revoke($user: String!, $reason: String!) {
    revokeUserTokens(user: $user, reason: $reason)
  }
`

/** Revokes `user`'s tokens through `server` as an admin. */
async function revoke(server: TestServer, user: string, reason: string): Promise<string> {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await adminToken()}` },
    body: JSON.stringify({ query: REVOKE, variables: { user, reason } }),
  })
  const body = (await response.json()) as { data?: { revokeUserTokens: string }; errors?: unknown }
  if (!body.data) throw new Error(`revoke failed: ${JSON.stringify(body.errors)}`)
  return body.data.revokeUserTokens
}

/** Resolves after the wall clock passed into the next second (tokens carry `iat` in seconds). */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1_050 - (Date.now() % 1_000)))

const member = (sub: string) => tokenFor({ sub, role: 'client', scopes: ['room:hall'] })

/** Checks revocation with `revoking` as the instance the admin uses and `serving` the user's. */
function revocationSuite(servers: () => { revoking: TestServer; serving: TestServer }) {
  it('closes the user’s sockets with 4403 and the reason, refuses the old token, accepts a fresh one', async () => {
    const { revoking, serving } = servers()
    const service = await serviceToken()
    const stolen = await member('mallory')
    const victim = connectClient(serving.wsUrl, stolen)
    const bystander = connectClient(serving.wsUrl, await member('bob'))
    const victimSub = subscribe(victim, RoomMessageDocument, { room: 'hall' })
    const bystanderSub = subscribe(bystander, RoomMessageDocument, { room: 'hall' })
    // Used over HTTP before the revocation: the verified token is remembered, and still refused.
    await mustExecute(serving.url, stolen, SendRoomMessageDocument, {
      input: { room: 'hall', body: 'mine' },
    })
    // Subscriptions go live asynchronously: send until both have received something.
    await vi.waitFor(
      async () => {
        await mustExecute(serving.url, service, SendRoomMessageDocument, {
          input: { room: 'hall', body: 'before' },
        })
        expect(victimSub.data.length * bystanderSub.data.length).toBeGreaterThan(0)
      },
      { timeout: 10_000, interval: 100 },
    )
    const seenBefore = bystanderSub.data.length

    const closed = nextClose(victim)
    await revoke(revoking, 'mallory', 'token leaked')
    expect(await closed).toMatchObject({
      code: 4403,
      reason: 'Forbidden: token revoked: token leaked',
    })

    // The old token is refused everywhere: HTTP and a new socket (4401: retrying cannot help).
    const http = await execute(serving.url, stolen, SendRoomMessageDocument, {
      input: { room: 'hall', body: 'again' },
    })
    expect(http.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED')
    expect(http.errors?.[0]?.message).toMatch(/token revoked/)
    const retry = connectClient(serving.wsUrl, stolen)
    expect(await nextClose(retry)).toMatchObject({ code: 4401 })
    await retry.dispose()

    // A token issued after the revocation works; the bystander never noticed.
    await nextSecond()
    const fresh = connectClient(serving.wsUrl, await member('mallory'))
    const freshSub = subscribe(fresh, RoomMessageDocument, { room: 'hall' })
    await vi.waitFor(
      async () => {
        await mustExecute(serving.url, service, SendRoomMessageDocument, {
          input: { room: 'hall', body: 'after' },
        })
        expect(freshSub.data.length).toBeGreaterThan(0)
      },
      { timeout: 10_000, interval: 100 },
    )
    await vi.waitFor(() => expect(bystanderSub.data.length).toBeGreaterThan(seenBefore))
    expect(bystanderSub.error).toBeUndefined()
    expect(bystanderSub.data.at(-1)?.roomMessage.body).toBe('after')
    for (const client of [victim, bystander, fresh]) await client.dispose()
  })
}

describe('token revocation on one instance', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(async () => {
    await server?.stop()
  })
  revocationSuite(() => ({ revoking: server, serving: server }))
})

describe.runIf(TEST_STACK === 'postgres')('token revocation across instances', () => {
  let store: TestStore
  const instances: TestServer[] = []
  beforeAll(async () => {
    store = await makeTestStore()
    instances.push(await startTestServer({ store }), await startTestServer({ store }))
  })
  afterAll(async () => {
    for (const instance of instances) await instance.stop()
    await store?.remove()
  })
  revocationSuite(() => ({
    revoking: instances[0] as TestServer,
    serving: instances[1] as TestServer,
  }))
})
