import { vi } from 'vitest'
import {
  RaiseParkingAlertDocument,
  RecentEventsDocument,
  SetSpaceStateDocument,
  UpsertLotDocument,
} from '../generated/graphql.js'
import { mustExecute } from './http.js'

/** Creates (or updates) lot `lotId` with `spaces` through the publish API. */
export async function createLot(
  url: string,
  token: string,
  lotId: string,
  spaces: readonly string[] = ['1', '2', '3', '4'],
): Promise<void> {
  await mustExecute(url, token, UpsertLotDocument, {
    input: { lotId, name: `Lot ${lotId}`, spaces: [...spaces], alertThreshold: 1 },
  })
}

/** Publishes a manual INFO alert with `message`; resolves with its seq once durable. */
export async function raiseAlert(
  url: string,
  token: string,
  lotId: string,
  message: string,
): Promise<number> {
  const { raiseParkingAlert } = await mustExecute(url, token, RaiseParkingAlertDocument, {
    input: { lotId, level: 'INFO', message },
  })
  return raiseParkingAlert.seq
}

/** Publishes a space state change; resolves with its seq once durable. */
export async function setSpace(
  url: string,
  token: string,
  lotId: string,
  spaceNumber: string,
  state: 'FREE' | 'OCCUPIED' | 'RESERVED' | 'OUT_OF_SERVICE',
): Promise<number> {
  const { setSpaceState } = await mustExecute(url, token, SetSpaceStateDocument, {
    input: { lotId, spaceNumber, state },
  })
  return setSpaceState.seq
}

/**
 * Publishes probes until `received()` grows. A subscription without a cursor starts at the
 * head of the log when the server opens it, so a probe published before that is not replayed;
 * probing again until one arrives proves the subscription is live, without guessing a delay.
 */
export async function probeUntilLive(
  received: () => number,
  probe: () => Promise<unknown>,
  attempts = 25,
): Promise<void> {
  const before = received()
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    await probe()
    try {
      await vi.waitFor(() => {
        if (received() === before) throw new Error('no probe yet')
      }, 200)
      return
    } catch {
      // Not live yet: probe again.
    }
  }
  throw new Error(`no probe arrived after ${attempts} attempts`)
}

/** Runs `count` tasks with at most `concurrency` in flight; resolves with results in order. */
export async function runConcurrently<T>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const index = next
      next += 1
      results[index] = await task(index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return results
}

/** The seq of the newest event of a lot's parking channel (0 when it has none), read as `token`. */
export async function headOf(url: string, token: string, lotId: string): Promise<number> {
  const { recentEvents } = await mustExecute(url, token, RecentEventsDocument, {
    channel: `lot:${lotId}:parking`,
    last: 1,
  })
  return recentEvents[0]?.seq ?? 0
}
