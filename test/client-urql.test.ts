import { createClient as createUrqlClient, subscriptionExchange } from '@urql/core'
import type { FormattedExecutionResult, Sink } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type RestartHarness, range, startRestartHarness } from '../client/test/restart-harness.js'
import { ClientLotFeedDocument } from './generated/graphql.js'
import { fromStart } from './utils/cursors.js'

const WAIT = { timeout: 15_000, interval: 10 }

let harness: RestartHarness
const unsubscribes: Array<() => void> = []

beforeAll(async () => {
  harness = await startRestartHarness('CU1')
})

afterAll(async () => {
  for (const unsubscribe of unsubscribes) unsubscribe()
  await harness?.close()
})

describe('urql (subscriptionExchange) over the client kit', () => {
  it('gets every event published while the server was down, with no gap and no duplicate', async () => {
    const { kit, lotId } = harness
    // urql's documented graphql-ws recipe, with the kit in place of graphql-ws's createClient.
    const urql = createUrqlClient({
      url: harness.server.url,
      exchanges: [
        subscriptionExchange({
          forwardSubscription: (request) => ({
            subscribe: (sink) => ({
              // urql's result type leaves `data` optional where graphql-ws's may be undefined:
              // only exactOptionalPropertyTypes (this repo's tsconfig) needs the cast.
              unsubscribe: kit.subscribe(
                { ...request, query: request.query ?? '' },
                sink as Sink<FormattedExecutionResult>,
              ),
            }),
          }),
        }),
      ],
    })
    const before = await harness.publish(3, 'before')
    const seqs: number[] = []
    const errors: unknown[] = []
    // The document aliases its root field (`feed`) and calls its cursor variable `since`.
    const variables = { lot: lotId, since: fromStart(`lot:${lotId}:parking`) }
    const { unsubscribe } = urql
      .subscription(ClientLotFeedDocument, variables)
      .subscribe((result) => {
        if (result.error) errors.push(result.error)
        if (result.data) seqs.push(result.data.feed.seq)
      })
    unsubscribes.push(unsubscribe)
    await vi.waitFor(() => expect(seqs).toEqual(range(1, before.at(-1) as number)), WAIT)

    const whileDown = await harness.restartPublishingWhileDown(4)
    await vi.waitFor(() => expect(seqs.at(-1)).toBe(whileDown.at(-1)), WAIT)
    const after = await harness.publish(2, 'after')
    await vi.waitFor(() => expect(seqs.at(-1)).toBe(after.at(-1)), WAIT)

    expect(seqs).toEqual(range(1, after.at(-1) as number))
    expect(errors).toEqual([])
    expect(harness.closeCodes[0]).toBe(1001)
    expect(harness.connects).toBe(2)
    // The kit resumed from a copy: urql's operation variables are as the test passed them.
    expect(variables.since).toBe(fromStart(`lot:${lotId}:parking`))
  })
})
