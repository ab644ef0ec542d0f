/**
 * The bench lots and the space changes published to them, shared by the fan-out publisher and
 * the publish-cost bench so that both create the same lots and send the same mutation.
 */
import type { Agent } from 'node:http'
import { postGraphql } from './post-graphql.js'

/** Spaces per bench lot. The last one is never published to, so occupancy stays below the
 * lot's alert threshold (1.0) and every publish appends exactly one event. */
export const SPACES = 8

export const SET_SPACE =
  'mutation ($input: SetSpaceStateInput!) { setSpaceState(input: $input) { seq } }'
const UPSERT_LOT = 'mutation ($input: UpsertLotInput!) { upsertLot(input: $input) { id } }'

/** Where and as whom the bench publishes. */
export interface PublishTarget {
  /** The server's `/graphql` URL. */
  readonly url: string
  /** A service token. */
  readonly token: string
  readonly agent: Agent
}

/** Creates `lots` (`upsertLot`, `concurrency` at a time) with `SPACES` spaces each. */
export async function createLots(
  { url, token, agent }: PublishTarget,
  lots: readonly string[],
  concurrency: number,
): Promise<void> {
  const spaces = Array.from({ length: SPACES }, (_, i) => String(i + 1))
  let next = 0
  const worker = async () => {
    while (next < lots.length) {
      const lotId = lots[next++] as string
      const result = await postGraphql(agent, url, token, UPSERT_LOT, {
        input: { lotId, name: lotId, spaces, alertThreshold: 1 },
      })
      if (result.errors?.length || !result.data) {
        throw new Error(`upsertLot ${lotId} failed: ${JSON.stringify(result.errors)}`)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

/**
 * The changes of each lot in turn: spaces 1..SPACES-1, alternating OCCUPIED and FREE, so every
 * change is a real one. `next` gives the input of `setSpaceState` for a lot.
 */
export function spaceChanges() {
  const turns = new Map<string, number>()
  return {
    next(lotId: string, customerName: string) {
      const turn = turns.get(lotId) ?? 0
      turns.set(lotId, turn + 1)
      return {
        lotId,
        spaceNumber: String((turn % (SPACES - 1)) + 1),
        state: Math.floor(turn / (SPACES - 1)) % 2 === 0 ? 'OCCUPIED' : 'FREE',
        customerName,
      }
    },
  }
}
