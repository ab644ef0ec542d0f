import { describe, expect, it } from 'vitest'
import type { Viewer } from '../../src/auth/viewer.js'
import { createAsyncQueue } from '../../src/events/async-queue.js'
import { createInProcessBus } from '../../src/events/in-process-bus.js'
import { createRateMeter } from '../../src/ops/rate-meter.js'
import { createRecentProblems } from '../../src/ops/recent-problems.js'
import {
  createConnectionRegistry,
  OPERATOR_CLOSE_CODE,
} from '../../src/transport/connection-registry.js'

const viewer = (sub: string, role: Viewer['role'] = 'client', scopes: string[] = []): Viewer => ({
  sub,
  role,
  scopes: new Set(scopes),
  expiresAt: undefined,
})

/** A registered connection whose `close` calls are recorded. */
function openConnection(registry: ReturnType<typeof createConnectionRegistry>, who: Viewer) {
  const closes: Array<{ code: number; reason: string }> = []
  const tracked = registry.open({
    viewer: who,
    remoteAddress: '10.0.0.1',
    forwardedFor: null,
    close: (code, reason) => closes.push({ code, reason }),
  })
  return { tracked, closes }
}

const label = { operationName: 'Feed', rootField: 'parkingUpdated' }

describe('connection registry', () => {
  it('counts the channels a subscription follows through its watched bus, until it stops', async () => {
    const registry = createConnectionRegistry({ instance: 'test:1' })
    const { tracked } = openConnection(registry, viewer('u1'))
    const bus = tracked.subscribe('s1', label).watch(createInProcessBus())
    const stopA = await bus.subscribe('lot:1:parking', () => {})
    const stopB = await bus.subscribe('lot:1:stats', () => {})
    expect(registry.channels(10)).toEqual({
      totalCount: 2,
      nodes: [
        { channel: 'lot:1:parking', subscribers: 1 },
        { channel: 'lot:1:stats', subscribers: 1 },
      ],
    })
    stopA()
    stopB()
    expect(registry.counts()).toMatchObject({ connections: 1, subscriptions: 1, channels: 0 })
  })

  it('ends a streaming subscription of a closed channel with CLOSED_BY_OPERATOR, at once', async () => {
    const registry = createConnectionRegistry()
    const { tracked } = openConnection(registry, viewer('u1'))
    const source = createAsyncQueue<number>()
    await tracked
      .subscribe('s1', label)
      .watch(createInProcessBus())
      .subscribe('room:a', () => {})
    const stream = tracked.started('s1', source) as AsyncIterableIterator<number>
    const waiting = stream.next()
    expect(registry.closeChannel('room:a', 'cleanup')).toBe(1)
    await expect(waiting).rejects.toMatchObject({
      message: 'subscription closed by an operator: cleanup',
      extensions: { code: 'CLOSED_BY_OPERATOR' },
    })
    expect(source.closed).toBe(true)
    expect(registry.counts()).toMatchObject({ subscriptions: 0, channels: 0 })
  })

  it('ends a subscription closed before it started streaming as soon as it starts', async () => {
    const registry = createConnectionRegistry()
    const { tracked } = openConnection(registry, viewer('u1'))
    await tracked
      .subscribe('s1', label)
      .watch(createInProcessBus())
      .subscribe('room:b', () => {})
    expect(registry.closeChannel('room:b', 'early')).toBe(1)
    const stream = tracked.started(
      's1',
      createAsyncQueue<number>(),
    ) as AsyncIterableIterator<number>
    await expect(stream.next()).rejects.toMatchObject({
      extensions: { code: 'CLOSED_BY_OPERATOR' },
    })
  })

  it('forgets a subscription that was refused (no stream)', () => {
    const registry = createConnectionRegistry()
    const { tracked } = openConnection(registry, viewer('u1'))
    tracked.subscribe('s1', label)
    expect(tracked.started('s1', { errors: [] })).toBeUndefined()
    expect(registry.counts().subscriptions).toBe(0)
  })

  it('disconnects with 4410 and a reason that fits a close frame', () => {
    const registry = createConnectionRegistry()
    const { tracked, closes } = openConnection(registry, viewer('u1'))
    expect(registry.disconnect(tracked.id, 'é'.repeat(100))).toBe(true)
    expect(closes).toHaveLength(1)
    expect(closes[0]?.code).toBe(OPERATOR_CLOSE_CODE)
    expect(Buffer.byteLength(closes[0]?.reason ?? '')).toBeLessThanOrEqual(123)
    expect(closes[0]?.reason).toMatch(/^Disconnected by an operator: é+…$/)
    expect(registry.disconnect(tracked.id, 'again')).toBe(false)
  })

  it('filters and pages connections in registration order', () => {
    const registry = createConnectionRegistry()
    for (const who of [viewer('a', 'operator', ['lot:1']), viewer('b'), viewer('c', 'operator')]) {
      openConnection(registry, who)
    }
    expect(
      registry.connections({ role: 'operator' }, { first: 10 }).nodes.map((c) => c.user),
    ).toEqual(['a', 'c'])
    expect(registry.connections({ scope: 'lot:1' }, { first: 10 }).totalCount).toBe(1)
    const first = registry.connections({}, { first: 2 })
    expect(first).toMatchObject({ totalCount: 3, hasNextPage: true })
    const second = registry.connections({}, { first: 2, after: first.endCursor ?? 0 })
    expect(second.nodes.map((c) => c.user)).toEqual(['c'])
    expect(second.hasNextPage).toBe(false)
  })
})

describe('rate meter', () => {
  it('averages over its window and forgets what fell out of it', () => {
    let now = 10_000
    const meter = createRateMeter({ windowMs: 5_000, now: () => now })
    meter.mark(10)
    expect(meter.perSecond()).toBe(2)
    now += 2_000
    meter.mark(5)
    expect(meter.perSecond()).toBe(3)
    now += 4_000
    expect(meter.perSecond()).toBe(1)
    now += 60_000
    expect(meter.perSecond()).toBe(0)
    expect(meter.total).toBe(15)
  })
})

describe('recent problems', () => {
  it('keeps the newest, classifies refusals and counts everything', () => {
    const problems = createRecentProblems({ capacity: 3 })
    for (const code of ['FORBIDDEN', 'BAD_USER_INPUT', 'UNAUTHENTICATED', 'CURSOR_EXPIRED']) {
      problems.record({ code, message: code.toLowerCase() })
    }
    expect(problems.list().map((p) => [p.code, p.kind])).toEqual([
      ['CURSOR_EXPIRED', 'ERROR'],
      ['UNAUTHENTICATED', 'REFUSAL'],
      ['BAD_USER_INPUT', 'ERROR'],
    ])
    expect(problems.totals()).toEqual({ errors: 2, refusals: 2 })
  })
})
