import fc from 'fast-check'
import {
  execute,
  GraphQLBoolean,
  GraphQLError,
  GraphQLInt,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
} from 'graphql'
import { describe, expect, it } from 'vitest'
import type { Viewer } from '../../src/auth/viewer.js'
import type { Role } from '../../src/events/channels.js'
import type { DeliveredEvent } from '../../src/events/stored-event.js'
import { createSharedExecutions } from '../../src/transport/shared-executions.js'

interface TestContext {
  readonly viewer: Viewer
}

// A schema whose event fields depend on who asks: `secret` only for admins, `inScope` on the
// viewer's scopes. Sharing an execution across viewers that differ in these would leak.
const Tick = new GraphQLObjectType<DeliveredEvent, TestContext>({
  name: 'Tick',
  fields: {
    seq: { type: GraphQLInt },
    cursor: { type: GraphQLString },
    secret: {
      type: GraphQLString,
      resolve: (event, _args, ctx) => (ctx.viewer.role === 'admin' ? `secret-${event.seq}` : null),
    },
    inScope: {
      type: GraphQLBoolean,
      resolve: (_event, _args, ctx) => ctx.viewer.scopes.has('lot:1'),
    },
  },
})
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLBoolean } } }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      ticks: {
        type: Tick,
        args: { lotId: { type: GraphQLString }, after: { type: GraphQLString } },
        resolve: (event: DeliveredEvent) => event,
      },
    },
  }),
})

const viewer = (sub: string, role: Role, scopes: string[]): Viewer => ({
  sub,
  role,
  scopes: new Set(scopes),
  expiresAt: undefined,
})

const event = (seq: number): DeliveredEvent => ({
  channel: 'lot:1:parking',
  seq,
  type: 'parking.spaceChanged',
  data: {} as never,
  publishedAt: new Date(0).toISOString(),
  cursor: `c-${seq}`,
})

const QUERY = parse(
  'subscription($lot: String, $after: String) { ticks(lotId: $lot, after: $after) { seq cursor secret inScope } }',
)
const CHANNELS = ['lot:1:parking']

/** `QUERY` asked by `who` with `variables`, executing with `who` in its context. */
const operationOf = (who: Viewer, variables: Record<string, unknown>) => ({
  document: QUERY,
  operationName: null,
  variables,
  viewer: who,
  contextValue: { viewer: who },
})

/** What `who` must see for `events`: its own execution, serialized. */
function ownExecution(
  who: Viewer,
  variables: Record<string, unknown>,
  events: DeliveredEvent[],
): string[] {
  return events.map((one) =>
    JSON.stringify(
      execute({
        schema,
        document: QUERY,
        rootValue: one,
        contextValue: { viewer: who },
        variableValues: variables,
      }),
    ),
  )
}

const render = (
  batch: readonly DeliveredEvent[],
  group: { render(batch: readonly DeliveredEvent[]): unknown },
) => group.render(batch) as (string | null)[]

describe('shared executions', () => {
  const executions = () =>
    createSharedExecutions({ schema, maskError: (error) => new GraphQLError(error.message) })

  it('shares one group between viewers of the same visibility, whatever their sub or cursor', () => {
    const shared = executions()
    const a = viewer('alice', 'operator', ['lot:1'])
    const b = viewer('bob', 'operator', ['lot:1'])
    const first = shared.group(CHANNELS, operationOf(a, { lot: '1', after: 'c-3' }), undefined)
    const second = shared.group(CHANNELS, operationOf(b, { after: 'c-9', lot: '1' }), undefined)
    expect(second).toBe(first)
    expect(shared.size()).toBe(1)
    first.release()
    second.release()
    expect(shared.size()).toBe(0)
  })

  it('keeps viewers of different roles or scopes apart, each seeing its own result', () => {
    const shared = executions()
    const admin = viewer('root', 'admin', [])
    const operator = viewer('op', 'operator', ['lot:1'])
    const outsider = viewer('out', 'operator', ['lot:2'])
    const batch = [event(1), event(2)]
    const groups = [admin, operator, outsider].map((who) =>
      shared.group(CHANNELS, operationOf(who, { lot: '1' }), undefined),
    )
    expect(new Set(groups).size).toBe(3)
    for (const [index, who] of [admin, operator, outsider].entries()) {
      expect(render(batch, groups[index] as never)).toEqual(ownExecution(who, { lot: '1' }, batch))
    }
  })

  it('separates different channels and different variables', () => {
    const shared = executions()
    const who = viewer('op', 'operator', ['lot:1'])
    const operation = (variables: Record<string, unknown>) => operationOf(who, variables)
    const base = shared.group(CHANNELS, operation({ lot: '1' }), undefined)
    expect(shared.group(['lot:2:parking'], operation({ lot: '1' }), undefined)).not.toBe(base)
    expect(shared.group(CHANNELS, operation({ lot: '2' }), undefined)).not.toBe(base)
  })

  it('never shares an execution whose result differs between its subscribers (random viewers)', () => {
    const roles: Role[] = ['admin', 'service', 'operator', 'seller', 'client', 'delivery']
    const arbitraryViewer = fc.record({
      sub: fc.constantFrom('u1', 'u2', 'u3'),
      role: fc.constantFrom(...roles),
      scopes: fc.subarray(['lot:1', 'lot:2', 'seller:5']),
    })
    fc.assert(
      fc.property(
        fc.array(arbitraryViewer, { minLength: 2, maxLength: 12 }),
        fc.array(fc.constantFrom('c-1', 'c-5', undefined)),
        (viewers, cursors) => {
          const shared = executions()
          const batch = [event(7), event(8)]
          const seen = new Map<object, string[]>()
          viewers.forEach((spec, index) => {
            const who = viewer(spec.sub, spec.role, spec.scopes)
            const variables = { lot: '1', after: cursors[index % Math.max(1, cursors.length)] }
            const group = shared.group(
              CHANNELS,
              {
                document: QUERY,
                operationName: null,
                variables,
                viewer: who,
                contextValue: { viewer: who },
              },
              undefined,
            )
            const own = ownExecution(who, variables, batch)
            // The group renders with its first member's context; it must equal every member's own.
            const rendered = seen.get(group) ?? render(batch, group as never)
            seen.set(group, rendered as string[])
            expect(rendered).toEqual(own)
          })
        },
      ),
      { seed: 4242, numRuns: 300 },
    )
  })

  it('renders filtered-out events as null and keeps the others', () => {
    const shared = executions()
    const who = viewer('op', 'admin', [])
    const group = shared.group(CHANNELS, operationOf(who, {}), (one) => one.seq % 2 === 0)
    const rendered = render([event(1), event(2)], group as never)
    expect(rendered[0]).toBeNull()
    expect(JSON.parse(rendered[1] as string)).toMatchObject({ data: { ticks: { seq: 2 } } })
  })
})
