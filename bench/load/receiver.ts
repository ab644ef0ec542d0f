/**
 * A receiver process: holds a share of a scenario's subscribers and counts what reaches them.
 * Started by the runner with an IPC channel; every command works on the sockets it holds.
 *
 * - `connect`: opens subscribers `offset`, `offset + stride`, ... of a scenario, each with a
 *   token of its own (`sub: bench-<index>`, role `client`, scope `lot:<its lot>`).
 * - `trim`: closes the subscribers whose index is `keep` or more.
 * - `unprimed`: lots that still have a subscriber which has received nothing (priming).
 * - `expect`: starts counting `phase`: each socket on one of `lots` (every lot when null)
 *   expects `perLot` messages; notices `done` once all arrived.
 * - `report`: what arrived for the phase being counted (and latencies when asked for).
 * - `close`: closes every socket (1000) and waits for the closes.
 */
import { signToken } from '../../src/auth/sign-token.js'
import { serveIpc } from '../lib/ipc.js'
import { assignment, makeScenarios, type ScenarioSizes, subscribersOf } from '../lib/scenarios.js'
import { openSubscriber, type StampSink, type SubscriberSocket } from './subscriber-socket.js'

const CONNECT_TIMEOUT = 30_000 // ms for one socket's connection_ack
const MAX_SAMPLES = 200_000 // latency samples kept per phase; later ones are dropped

/** Arguments of `connect`. */
export interface ConnectArgs {
  readonly url: string
  readonly secret: string
  readonly sizes: ScenarioSizes
  readonly scenario: string
  /** This receiver's subscribers: indexes `offset`, `offset + stride`, ... below the total. */
  readonly offset: number
  readonly stride: number
  /** Sockets being opened at once. */
  readonly concurrency: number
}

/** What `connect` achieved. */
export interface ConnectResult {
  readonly connected: number
  readonly failed: number
  readonly errors: readonly string[]
  readonly ms: number
}

/** Arguments of `expect`. */
export interface ExpectArgs {
  readonly phase: number
  /** Messages each subscriber of an expecting lot should get. */
  readonly perLot: number
  /** The lots published to; null: every lot. */
  readonly lots: readonly string[] | null
  /** Whether to keep latency samples. */
  readonly latency: boolean
}

/** What arrived for the phase being counted. */
export interface PhaseReport {
  readonly delivered: number
  readonly expected: number
  /** Sockets whose count is not exactly what they expected (missing or duplicate messages). */
  readonly mismatched: number
  /** Wall-clock ms of the first and last stamped message of the phase. */
  readonly firstAt: number
  readonly lastAt: number
  /** Receive time - send time, ms, when the phase records latency. */
  readonly latencies: readonly number[]
  readonly unexpected: number
  readonly unexpectedSample: readonly string[]
}

/** The receiver's commands. */
export type ReceiverCommands = {
  connect: [ConnectArgs, ConnectResult]
  trim: [{ keep: number }, { ms: number }]
  unprimed: [undefined, { lots: string[]; sockets: number; unexpectedSample: string[] }]
  expect: [ExpectArgs, null]
  report: [undefined, PhaseReport]
  close: [undefined, { ms: number }]
}

let sockets: SubscriberSocket[] = []
// Tokens by lot and subscriber index: the secret stays the same for a whole bench run.
const tokens = new Map<string, string>()
let phase = -1
let expecting: (socket: SubscriberSocket) => number = () => 0
let expectedTotal = 0
let recordLatency = false
let delivered = 0
let firstAt = Number.POSITIVE_INFINITY
let lastAt = 0
let latencies: number[] = []
let unexpected = 0
let unexpectedSample: string[] = []

const sink: StampSink = {
  stamped(socket, stampPhase, sentAt, at) {
    socket.primed = true
    if (stampPhase !== phase) return
    socket.count += 1
    delivered += 1
    if (at < firstAt) firstAt = at
    if (at > lastAt) lastAt = at
    if (recordLatency && latencies.length < MAX_SAMPLES) latencies.push(at - sentAt)
    if (delivered === expectedTotal) notify('done', { phase })
  },
  unexpected(_socket, what) {
    unexpected += 1
    if (unexpectedSample.length < 5) unexpectedSample.push(what.slice(0, 200))
  },
}

async function connect(args: ConnectArgs): Promise<ConnectResult> {
  const scenario = makeScenarios(args.sizes).find(({ key }) => key === args.scenario)
  if (!scenario) throw new Error(`unknown scenario ${args.scenario}`)
  const startedAt = performance.now()
  const errors: string[] = []
  let failed = 0
  const indexes: number[] = []
  for (let index = args.offset; index < subscribersOf(scenario); index += args.stride) {
    indexes.push(index)
  }
  let next = 0
  const worker = async () => {
    while (next < indexes.length) {
      const index = indexes[next++] as number
      const { lotId, doc } = assignment(scenario, index)
      try {
        const key = `${args.secret}\n${lotId}\n${index}`
        let token = tokens.get(key)
        if (!token) {
          token = await signToken(args.secret, {
            sub: `bench-${index}`,
            role: 'client',
            scopes: [`lot:${lotId}`],
            expiresInSeconds: 6 * 3_600,
          })
          tokens.set(key, token)
        }
        sockets.push(
          await openSubscriber({
            index,
            url: args.url,
            token,
            lotId,
            query: doc.query(lotId),
            variables: doc.variables(lotId),
            sink,
            timeoutMs: CONNECT_TIMEOUT,
          }),
        )
      } catch (error) {
        failed += 1
        if (errors.length < 5) errors.push((error as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: args.concurrency }, worker))
  return {
    connected: indexes.length - failed,
    failed,
    errors,
    ms: performance.now() - startedAt,
  }
}

async function closeWhere(closing: (socket: SubscriberSocket) => boolean) {
  const startedAt = performance.now()
  const gone = sockets.filter(closing)
  sockets = sockets.filter((socket) => !closing(socket))
  await Promise.all(gone.map((socket) => socket.close()))
  unexpectedSample = []
  return { ms: performance.now() - startedAt }
}

const { notify } = serveIpc<ReceiverCommands>({
  connect,
  unprimed() {
    const lots = new Set<string>()
    let count = 0
    for (const socket of sockets) {
      if (socket.primed) continue
      lots.add(socket.lotId)
      count += 1
    }
    return { lots: [...lots], sockets: count, unexpectedSample }
  },
  expect(args) {
    phase = args.phase
    const lots = args.lots === null ? null : new Set(args.lots)
    expecting = (socket) => (lots === null || lots.has(socket.lotId) ? args.perLot : 0)
    expectedTotal = sockets.reduce((sum, socket) => sum + expecting(socket), 0)
    recordLatency = args.latency
    delivered = 0
    firstAt = Number.POSITIVE_INFINITY
    lastAt = 0
    latencies = []
    unexpected = 0
    unexpectedSample = []
    for (const socket of sockets) socket.count = 0
    if (expectedTotal === 0) notify('done', { phase })
    return null
  },
  report() {
    let mismatched = 0
    for (const socket of sockets) if (socket.count !== expecting(socket)) mismatched += 1
    return {
      delivered,
      expected: expectedTotal,
      mismatched,
      firstAt: delivered > 0 ? firstAt : 0,
      lastAt,
      latencies,
      unexpected,
      unexpectedSample,
    }
  },
  trim: ({ keep }) => closeWhere((socket) => socket.index >= keep),
  close: () => closeWhere(() => true),
})
