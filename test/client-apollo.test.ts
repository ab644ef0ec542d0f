import { readFileSync } from 'node:fs'
import { ApolloClient, CombinedGraphQLErrors, gql, InMemoryCache } from '@apollo/client'
import { GraphQLWsLink } from '@apollo/client/link/subscriptions'
import { buildSchema, isAbstractType } from 'graphql'
import type { Subscription } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type RestartHarness, range, startRestartHarness } from '../client/test/restart-harness.js'
import { ParkingPositionsDocument } from './generated/graphql.js'
import { probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { serviceToken } from './utils/tokens.js'
import { within } from './utils/within.js'

const WAIT = { timeout: 15_000, interval: 10 }

/**
 * Apollo's cache must know which types implement `Event` and make up `ParkingEvent` to match
 * the fragments on them (see Apollo's "possibleTypes"); derived here from the printed schema.
 */
function possibleTypes(): Record<string, string[]> {
  const schema = buildSchema(
    readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8'),
  )
  return Object.fromEntries(
    Object.values(schema.getTypeMap())
      .filter(isAbstractType)
      .map((type) => [type.name, schema.getPossibleTypes(type).map((member) => member.name)]),
  )
}

let harness: RestartHarness
let apollo: ApolloClient
const subscriptions: Subscription[] = []

beforeAll(async () => {
  harness = await startRestartHarness('CA1')
  // The kit is a graphql-ws Client: it goes into GraphQLWsLink as it is.
  apollo = new ApolloClient({
    link: new GraphQLWsLink(harness.kit),
    cache: new InMemoryCache({ possibleTypes: possibleTypes() }),
  })
})

afterAll(async () => {
  for (const subscription of subscriptions) subscription.unsubscribe()
  apollo?.stop()
  await harness?.close()
})

describe('Apollo Client (GraphQLWsLink) over the client kit', () => {
  it('gets every event published while the server was down, with no gap and no duplicate', async () => {
    const seqs: number[] = []
    const errors: unknown[] = []
    subscriptions.push(
      apollo
        .subscribe({ query: ParkingPositionsDocument, variables: { lotId: harness.lotId } })
        .subscribe({
          next: ({ data, error }) => {
            if (error) errors.push(error)
            if (data) seqs.push(data.parkingUpdated.seq)
          },
          error: (error) => errors.push(error),
        }),
    )
    // No cursor to start from, as an app subscribes: probe until the stream is live.
    const service = await serviceToken()
    await probeUntilLive(
      () => seqs.length,
      () => raiseAlert(harness.server.url, service, harness.lotId, 'probe'),
    )
    const first = seqs[0] as number
    const before = await harness.publish(3, 'before')
    await vi.waitFor(() => expect(seqs.at(-1)).toBe(before.at(-1)), WAIT)

    const whileDown = await harness.restartPublishingWhileDown(4)
    expect(seqs.at(-1)).toBe(before.at(-1))
    await vi.waitFor(() => expect(seqs.at(-1)).toBe(whileDown.at(-1)), WAIT)

    const after = await harness.publish(2, 'after')
    await vi.waitFor(() => expect(seqs.at(-1)).toBe(after.at(-1)), WAIT)

    expect(seqs).toEqual(range(first, after.at(-1) as number))
    expect(errors).toEqual([])
    expect(harness.closeCodes[0]).toBe(1001)
    expect(harness.connects).toBe(2)
  })

  it('hands a subscription the server refuses to Apollo as CombinedGraphQLErrors', async () => {
    // GraphQLWsLink reads the global WebSocket when a subscription fails; Node 20 has none.
    const hadWebSocket = 'WebSocket' in globalThis
    globalThis.WebSocket ??= WebSocket as unknown as typeof globalThis.WebSocket
    try {
      const refused = apollo.subscribe({
        query: gql`
          subscription {
            parkingUpdated(lotId: "CA1") {
              noSuchField
            }
          }
        `,
      })
      const error = await within(
        new Promise<unknown>((resolve) => {
          subscriptions.push(
            refused.subscribe({ next: (result) => resolve(result.error), error: resolve }),
          )
        }),
        5_000,
        'the refusal',
      )
      expect(CombinedGraphQLErrors.is(error)).toBe(true)
      expect((error as CombinedGraphQLErrors).errors[0]?.extensions?.['code']).toBe(
        'GRAPHQL_VALIDATION_FAILED',
      )
    } finally {
      if (!hadWebSocket) Reflect.deleteProperty(globalThis, 'WebSocket')
    }
  })
})
