/**
 * The publisher process: sends `setSpaceState` mutations over HTTP (loopback, keep-alive) with
 * a service token, each stamped with its send time in `customerName`. It runs apart from the
 * receivers so that sending never waits on their event loop.
 *
 * - `init`: the server to publish to and the secret to sign the service token with.
 * - `setup`: creates the lots (`upsertLot`).
 * - `publish`: `perLot` events to each lot, round-robin over the lots, either as fast as the
 *   server accepts them (`concurrency` requests in flight) or paced at `perSecond` (open loop:
 *   each event leaves at its scheduled time, whatever happened to the previous ones).
 */
import { Agent } from 'node:http'
import { signToken } from '../../src/auth/sign-token.js'
import { serveIpc } from '../lib/ipc.js'
import { stampFor, wallClock } from '../lib/scenarios.js'
import { postGraphql } from './post-graphql.js'
import { createLots, type PublishTarget, SET_SPACE, spaceChanges } from './space-changes.js'

const SETUP_CONCURRENCY = 8

/** Arguments of `publish`. */
export interface PublishArgs {
  readonly phase: number
  readonly lots: readonly string[]
  readonly perLot: number
  /** Requests in flight at once when not paced. */
  readonly concurrency: number
  /** Publishes per second; 0 publishes as fast as the server accepts. */
  readonly perSecond: number
}

/** What a `publish` did; times are wall-clock ms. */
export interface PublishResult {
  readonly sent: number
  readonly ok: number
  readonly errors: number
  readonly errorSample: readonly string[]
  readonly firstSentAt: number
  readonly lastAnsweredAt: number
  /** Paced only: the latest any event left after its scheduled time, ms. */
  readonly maxLagMs: number
}

/** The publisher's commands. */
export type PublisherCommands = {
  init: [{ origin: string; secret: string }, null]
  setup: [{ lots: readonly string[] }, { ms: number }]
  publish: [PublishArgs, PublishResult]
}

let target: PublishTarget | undefined
let changes = spaceChanges()

function session() {
  if (!target) throw new Error('publisher: init first')
  return target
}

async function publish(args: PublishArgs): Promise<PublishResult> {
  const { url, token, agent } = session()
  const order = Array.from({ length: args.perLot }, () => args.lots).flat()
  const errorSample: string[] = []
  let ok = 0
  let errors = 0
  let lastAnsweredAt = 0
  let maxLagMs = 0
  const firstSentAt = wallClock()
  const send = async (lotId: string) => {
    const input = changes.next(lotId, stampFor(args.phase, wallClock()))
    try {
      const result = await postGraphql(agent, url, token, SET_SPACE, { input })
      if (result.errors?.length || !result.data) {
        errors += 1
        if (errorSample.length < 5) errorSample.push(JSON.stringify(result.errors).slice(0, 300))
      } else ok += 1
    } catch (error) {
      errors += 1
      if (errorSample.length < 5) errorSample.push((error as Error).message)
    }
    lastAnsweredAt = wallClock()
  }
  if (args.perSecond > 0) {
    const startedAt = performance.now()
    const inFlight: Promise<void>[] = []
    for (let i = 0; i < order.length; i += 1) {
      const due = startedAt + (i * 1000) / args.perSecond
      const wait = due - performance.now()
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
      maxLagMs = Math.max(maxLagMs, performance.now() - due)
      inFlight.push(send(order[i] as string))
    }
    await Promise.all(inFlight)
  } else {
    let next = 0
    const worker = async () => {
      while (next < order.length) await send(order[next++] as string)
    }
    await Promise.all(Array.from({ length: args.concurrency }, worker))
  }
  return {
    sent: order.length,
    ok,
    errors,
    errorSample,
    firstSentAt,
    lastAnsweredAt,
    maxLagMs,
  }
}

serveIpc<PublisherCommands>({
  async init({ origin, secret }) {
    target?.agent.destroy()
    changes = spaceChanges()
    target = {
      url: `${origin}/graphql`,
      token: await signToken(secret, { sub: 'bench-publisher', role: 'service' }),
      agent: new Agent({ keepAlive: true, maxSockets: 256 }),
    }
    return null
  },
  async setup({ lots }) {
    const startedAt = performance.now()
    await createLots(session(), lots, SETUP_CONCURRENCY)
    return { ms: performance.now() - startedAt }
  },
  publish,
})
