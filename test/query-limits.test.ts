import { readdirSync, readFileSync } from 'node:fs'
import {
  type GraphQLFormattedError,
  getIntrospectionQuery,
  Kind,
  parse,
  print,
  validate,
} from 'graphql'
import type { Client } from 'graphql-ws'
import { envelop, type Plugin } from 'graphql-yoga'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { schema } from '../src/schema/index.js'
import { queryLimitPlugins } from '../src/transport/query-limits.js'
import { ParkingPositionsDocument } from './generated/graphql.js'
import { postRaw } from './utils/http-raw.js'
import { createLot, probeUntilLive, raiseAlert } from './utils/parking-fixtures.js'
import { startTestServer, type TestServer } from './utils/server.js'
import { openSse } from './utils/sse.js'
import { adminToken, serviceToken, TEST_SECRET } from './utils/tokens.js'
import { connectClient, connected, subscribe } from './utils/ws-client.js'

const LIMITS = loadConfig({ JWT_SECRET: TEST_SECRET }).limits.query
const LOT = 'QL1'
const CHANNEL = `lot:${LOT}:parking`

/** `count` copies of `text`, space-separated. */
const times = (count: number, text: (i: number) => string) =>
  Array.from({ length: count }, (_, i) => text(i)).join(' ')

/**
 * For each limit, a document at the limit (must pass) and one just over it (refused); each
 * crosses only its own limit.
 */
const DOCUMENTS = {
  // Depth counts every selection set: `n` nested fragments put `__typename` at depth n + 1.
  maxDepth: (depth: number) =>
    `query Deep { ${'... on Query { '.repeat(depth - 1)}__typename ${'} '.repeat(depth - 1)}}`,
  maxAliases: (aliases: number) =>
    `query Aliased { ${times(aliases, (i) => `a${i}: recentEvents(channel: "${CHANNEL}", last: 1) { seq }`)} }`,
  maxDirectives: (directives: number) =>
    `query Directed { ${times(directives, () => '__typename @include(if: true)')} }`,
  // Every name and punctuator is a token: `{`, `t0 : __typename` (3 each), up to two more
  // `__typename` to land on the count, `}`. Aliases keep graphql-js from comparing thousands
  // of same-named fields (its own validation budget), and on `__typename` they are free.
  maxTokens: (tokens: number) => {
    const aliased = Math.floor((tokens - 2) / 3)
    const plain = tokens - 2 - aliased * 3
    return `{ ${times(aliased, (i) => `t${i}: __typename`)} ${times(plain, () => '__typename')} }`
  },
  // Each page of 500 events with 2 fields costs (2 + 2 × 1.5) × 500 = 2500.
  maxCost: (cost: number) =>
    `query Costly { ${times(cost / 2_500, (i) => `p${i}: recentEvents(channel: "${CHANNEL}", last: 500) { seq type }`)} }`,
} as const

/** Parse and validate as Yoga does, with only the query limits as plugins. */
function withLimits(limits: typeof LIMITS) {
  const engine: Plugin = {
    onParse: ({ setParseFn }) => setParseFn(parse),
    onValidate: ({ setValidationFn }) => setValidationFn(validate),
  }
  const enveloped = envelop({ plugins: [engine, ...queryLimitPlugins(limits)] })()
  return {
    parse: enveloped.parse as typeof parse,
    validate: enveloped.validate as typeof validate,
  }
}

type Outcome = { errors?: readonly GraphQLFormattedError[]; data?: unknown }

let server: TestServer
let admin: string
const clients: Client[] = []

beforeAll(async () => {
  server = await startTestServer()
  admin = await adminToken()
  await createLot(server.url, await serviceToken(), LOT)
})

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()))
  await server?.stop()
})

async function overHttp(query: string): Promise<Outcome> {
  const { result } = await postRaw(server.url, JSON.stringify({ query }), {
    authorization: `Bearer ${admin}`,
  })
  return result as Outcome
}

async function overSse(query: string): Promise<Outcome> {
  const stream = await openSse(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({ query }),
  })
  await stream.ended
  const next = stream.events.find((event) => event.event === 'next')
  if (!next) throw new Error(`no result over SSE: ${JSON.stringify(stream.events)}`)
  return JSON.parse(next.data) as Outcome
}

let wsClient: Client | undefined
async function overWs(query: string): Promise<Outcome> {
  if (!wsClient) {
    wsClient = connectClient(server.wsUrl, admin)
    clients.push(wsClient)
    await connected(wsClient)
  }
  const client = wsClient
  return new Promise((resolve, reject) => {
    let last: Outcome | undefined
    client.subscribe(
      { query },
      {
        next: (result) => {
          last = result as Outcome
        },
        // An `error` message carries the request errors; a close event means the socket died.
        error: (error) =>
          Array.isArray(error)
            ? resolve({ errors: error as GraphQLFormattedError[] })
            : reject(new Error(`socket closed: ${JSON.stringify(error)}`)),
        complete: () => resolve(last ?? {}),
      },
    )
  })
}

const TRANSPORTS = { http: overHttp, sse: overSse, ws: overWs }

describe.each(Object.entries(TRANSPORTS))('query limits over %s', (_name, run) => {
  it.each(Object.keys(DOCUMENTS) as Array<keyof typeof DOCUMENTS>)(
    'refuses a document over %s with a coded error; one at the limit runs',
    async (limit) => {
      const at = LIMITS[limit]
      const over = limit === 'maxCost' ? at + 2_500 : at + 1

      const refused = await run(DOCUMENTS[limit](over))
      expect(refused.data ?? undefined).toBeUndefined()
      expect(refused.errors).toHaveLength(1)
      expect(refused.errors?.[0]).toMatchObject({
        message: expect.stringMatching(/limit of \d+ exceeded/),
        extensions: { code: 'BAD_USER_INPUT', limit },
      })
      expect(refused.errors?.[0]?.message).not.toMatch(/Syntax Error/)

      const accepted = await run(DOCUMENTS[limit](at))
      expect(accepted.errors).toBeUndefined()
      expect(accepted.data).toBeDefined()
    },
  )
})

describe('what the limits let through', () => {
  it('uses the documented defaults', () => {
    expect(LIMITS).toEqual({
      maxDepth: 12,
      maxAliases: 15,
      maxDirectives: 10,
      maxTokens: 2_000,
      maxCost: 30_000,
    })
  })

  it('are configurable, 0 turning one off, and refuse bad values naming the variable', () => {
    const limits = loadConfig({
      JWT_SECRET: TEST_SECRET,
      QUERY_MAX_DEPTH: '3',
      QUERY_MAX_COST: '0',
      QUERY_MAX_ALIASES: '0',
    }).limits.query
    const enveloped = withLimits(limits)
    const errorsOf = (text: string) =>
      enveloped.validate(schema, enveloped.parse(text)).map((error) => error.extensions['limit'])
    expect(errorsOf(DOCUMENTS.maxDepth(3))).toEqual([])
    expect(errorsOf(DOCUMENTS.maxDepth(4))).toEqual(['maxDepth'])
    expect(errorsOf(DOCUMENTS.maxCost(LIMITS.maxCost * 2))).toEqual([])
    for (const name of ['QUERY_MAX_DEPTH', 'QUERY_MAX_TOKENS', 'QUERY_MAX_COST']) {
      expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, [name]: '-1' })).toThrow(
        new RegExp(`^${name} must be an integer`),
      )
    }
  })

  it("passes every test document and GraphiQL's introspection query", () => {
    const enveloped = withLimits(LIMITS)
    const documents = new Map<string, string>()
    for (const file of readdirSync('test/documents')) {
      const whole = parse(readFileSync(`test/documents/${file}`, 'utf8'))
      const fragments = whole.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)
      for (const operation of whole.definitions) {
        if (operation.kind !== Kind.OPERATION_DEFINITION) continue
        const text = [operation, ...fragments].map((definition) => print(definition)).join('\n')
        documents.set(`${file}: ${operation.name?.value}`, text)
      }
    }
    documents.set(
      'introspection',
      getIntrospectionQuery({
        descriptions: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
        inputValueDeprecation: true,
        oneOf: true,
      }),
    )
    expect(documents.size).toBeGreaterThan(50)
    for (const [name, text] of documents) {
      const errors = enveloped.validate(schema, enveloped.parse(text))
      expect({ name, errors: errors.map((error) => error.message) }).toEqual({ name, errors: [] })
    }
  })

  it('answers the introspection query over HTTP', async () => {
    const result = await overHttp(getIntrospectionQuery({ inputValueDeprecation: true }))
    expect(result.errors).toBeUndefined()
    expect(result.data).toMatchObject({ __schema: { queryType: { name: 'Query' } } })
  })

  it('leaves other operations and clients alone: subscriptions keep streaming', async () => {
    const service = await serviceToken()
    const watcher = connectClient(server.wsUrl, admin)
    clients.push(watcher)
    await connected(watcher)
    const positions = subscribe(watcher, ParkingPositionsDocument, { lotId: LOT })
    await probeUntilLive(
      () => positions.data.length,
      () => raiseAlert(server.url, service, LOT, 'probe'),
    )

    // Refusals on the watcher's own socket and on other transports.
    const refusedHere = await new Promise<unknown>((resolve) =>
      watcher.subscribe(
        { query: DOCUMENTS.maxDepth(LIMITS.maxDepth + 1) },
        { next: () => {}, error: resolve, complete: () => resolve(undefined) },
      ),
    )
    expect(refusedHere).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ limit: 'maxDepth' }) }),
    ])
    await overHttp(DOCUMENTS.maxCost(LIMITS.maxCost + 2_500))
    await overWs(DOCUMENTS.maxTokens(LIMITS.maxTokens + 1))

    const before = positions.data.length
    await raiseAlert(server.url, service, LOT, 'after refusals')
    const data = await positions.waitForCount(before + 1)
    expect(data.at(-1)).toMatchObject({ parkingUpdated: { message: 'after refusals' } })
    expect(positions.error).toBeUndefined()
    expect(positions.completed).toBe(false)
    positions.unsubscribe()
  })
})
