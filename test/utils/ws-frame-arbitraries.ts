import fc from 'fast-check'
import type { ScriptStep, SocketScript } from './run-socket-script.js'

/** A `subscribe` payload as a client would send it. */
export type SubscribePayload = Readonly<Record<string, unknown>>

/** What the generated frames are made of. */
export interface FrameFixtures {
  /** A token the server accepts at `connection_init`. */
  readonly goodToken: string
  /** Tokens it must refuse: expired, badly signed, not a JWT, too long. */
  readonly badTokens: readonly string[]
  /** Subscribe payloads, good and bad (forbidden channel, syntax, query limits...). */
  readonly subscribePayloads: readonly SubscribePayload[]
  /** The largest frame the server accepts, in bytes; oversized frames are bigger. */
  readonly maxMessageBytes: number
}

/** A frame step with what kind of frame it is, for histograms and readable counterexamples. */
export type LabelledStep = ScriptStep & { readonly label?: string }

type Frame = Record<string, unknown>

const DEEP = '@@deep@@' // stands for a deeply nested value until the frame is text

const MESSAGE_TYPES = new Set([
  'connection_init',
  'subscribe',
  'complete',
  'ping',
  'pong',
  'connection_ack',
  'next',
  'error',
])
const KNOWN_FIELDS = new Set([
  'type',
  'id',
  'payload',
  'query',
  'variables',
  'operationName',
  'extensions',
  'token',
  'Authorization',
])

/** A frame's type as a histogram label: unknown types are one label. */
const typeLabel = (frame: Frame) => {
  const type = String(frame['type'])
  return MESSAGE_TYPES.has(type) ? type : 'unknown type'
}

/** A path as a histogram label: invented field names are `*`. */
const pathLabel = (path: readonly string[]) =>
  path.map((key) => (KNOWN_FIELDS.has(key) ? key : '*')).join('.')

/** `[[[...]]]` (or `{"a":{"a":...}}`) `depth` levels deep, built as text: no recursion. */
function deeplyNested(depth: number, objects: boolean): string {
  return objects
    ? `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`
    : `${'['.repeat(depth)}]${']'.repeat(depth - 1)}`
}

function textStep(label: string, data: string): LabelledStep {
  return withToString(
    { kind: 'text', data, label },
    () => `${label}(${data.length}): ${preview(data)}`,
  )
}

function binaryStep(label: string, data: Uint8Array): LabelledStep {
  return withToString(
    { kind: 'binary', data, label },
    () => `${label}(${data.length} B): ${Buffer.from(data.subarray(0, 40)).toString('hex')}`,
  )
}

function withToString<T extends object>(value: T, describe: () => string): T {
  return Object.assign(value, { [fc.toStringMethod]: describe })
}

function preview(text: string): string {
  return JSON.stringify(text.length > 160 ? `${text.slice(0, 160)}…` : text)
}

/** Client frames before mutation: every message type, in and out of place. */
function wellFormedFrames({ goodToken, badTokens, subscribePayloads }: FrameFixtures) {
  const ids = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('1', '2', '3') }, // reused: ids in use
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'constructor', 'toString', '\u0000') },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'i'.repeat(n)) },
  )
  const init = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ payload: { token: goodToken } }) },
    { weight: 1, arbitrary: fc.constant({ payload: { Authorization: `Bearer ${goodToken}` } }) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(...badTokens).map((token) => ({ payload: { token } })),
    },
    { weight: 1, arbitrary: fc.constantFrom({}, { payload: {} }, { payload: null }) },
  )
  const pingPayload = fc.option(
    fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
    {
      nil: undefined,
    },
  )
  return fc.oneof(
    { weight: 2, arbitrary: init.map((rest) => ({ type: 'connection_init', ...rest })) },
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant('subscribe'),
        id: ids,
        payload: fc.constantFrom(...subscribePayloads),
      }),
    },
    { weight: 3, arbitrary: ids.map((id) => ({ type: 'complete', id })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('ping', 'pong'), pingPayload)
        .map(([type, payload]) => (payload === undefined ? { type } : { type, payload })),
    },
    {
      // Server-to-client messages sent by a client, and types nobody defined.
      weight: 1,
      arbitrary: fc.oneof(
        fc.constantFrom<Frame>(
          { type: 'connection_ack' },
          { type: 'next', id: '1', payload: { data: null } },
          { type: 'error', id: '1', payload: [{ message: 'from the client' }] },
          { type: 'start', id: '1', payload: { query: '{ __typename }' } },
          { type: 'connection_terminate' },
        ),
        fc.string({ maxLength: 12 }).map((type) => ({ type, id: '1' })),
      ),
    },
  ) as fc.Arbitrary<Frame>
}

/** Paths of `frame` down to its second level, the places a mutation may hit. */
function pathsOf(frame: Frame): string[][] {
  return Object.entries(frame).flatMap(([key, value]) => [
    [key],
    ...(typeof value === 'object' && value !== null && !Array.isArray(value)
      ? Object.keys(value).map((inner) => [key, inner])
      : []),
  ])
}

/** `frame` with `path` set to `value`, or removed when `value` is `undefined`; copies. */
function setAt(frame: Frame, path: readonly string[], value: unknown): Frame {
  const [head, ...rest] = path as [string, ...string[]]
  const copy: Frame = { ...frame }
  if (rest.length === 0) {
    if (value === undefined) delete copy[head]
    else copy[head] = value
  } else {
    const inner = copy[head]
    copy[head] = setAt(
      typeof inner === 'object' && inner !== null ? (inner as Frame) : {},
      rest,
      value,
    )
  }
  return copy
}

/** Values that replace a field: other JSON types, extremes, unicode, huge and deep values. */
const replacements = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<unknown>(
      null,
      true,
      -1,
      0,
      1.5,
      2 ** 53 + 1,
      -(2 ** 63),
      1e308,
      Number.MIN_VALUE,
      '',
      [],
      {},
      [null],
      { type: 'ping' },
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 32 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 1_000, max: 60_000 }),
        fc.constantFrom('a', 'é', '😀', '\u0000', '"', '\\'),
      )
      .map(([n, char]) => char.repeat(Math.floor(n / char.length))),
  },
  { weight: 1, arbitrary: fc.constant(DEEP) },
)

/** One mutation of a well-formed frame, as the text to send. */
function mutatedFrames(fixtures: FrameFixtures) {
  return fc
    .tuple(wellFormedFrames(fixtures), fc.integer({ min: 500, max: 30_000 }), fc.boolean())
    .chain(([frame, depth, objects]) => {
      const paths = pathsOf(frame)
      const at = fc.constantFrom(...paths)
      const toText = (mutated: Frame) =>
        JSON.stringify(mutated).replaceAll(JSON.stringify(DEEP), deeplyNested(depth, objects))
      return fc.oneof(
        at.map((path) =>
          textStep(`delete ${pathLabel(path)}`, toText(setAt(frame, path, undefined))),
        ),
        fc
          .tuple(at, replacements)
          .map(([path, value]) =>
            textStep(`replace ${pathLabel(path)}`, toText(setAt(frame, path, value))),
          ),
        fc
          .tuple(fc.string({ maxLength: 10 }), replacements)
          .map(([key, value]) =>
            textStep('extra field', toText(setAt(frame, ['payload', key || 'x'], value))),
          ),
        fc.nat().map((cut) => {
          const text = JSON.stringify(frame)
          return textStep('truncated', text.slice(0, cut % Math.max(text.length, 1)))
        }),
        fc
          .constantFrom(
            (text: string) => `{"type":"subscribe",${text.slice(1)}`, // duplicate keys, last wins
            (text: string) => `\uFEFF${text}`,
            (text: string) => `${text}}`,
            (text: string) => `${text} trailing`,
            (text: string) => `   ${text}\n\t`,
            (text: string) => text.replace(/:(-?\d+|true|false|null)/, ':1e400'),
            (text: string) => text.replace(/"[^"]*"$/, 'NaN'),
          )
          .map((edit) => textStep('edited text', edit(JSON.stringify(frame)))),
      )
    })
}

/** Text that is not a message: not JSON, or JSON of the wrong shape. */
const notMessages = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '',
    ' ',
    'null',
    'true',
    '42',
    '"ping"',
    '[]',
    '{}',
    '{"type":null}',
    '{"type":""}',
    '{',
    '}',
  ),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? 'null'),
)

/** Binary frames: random bytes, invalid UTF-8, and well-formed messages sent as binary. */
function binaryFrames(fixtures: FrameFixtures) {
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.constant(Uint8Array.from([0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe, 0xed, 0xa0, 0x80])),
    wellFormedFrames(fixtures).map((frame) => new Uint8Array(Buffer.from(JSON.stringify(frame)))),
  )
}

/** Frames above the size limit, text (a message padded out) or binary. */
function oversizedFrames({ goodToken, maxMessageBytes }: FrameFixtures) {
  return fc
    .tuple(fc.integer({ min: maxMessageBytes + 1, max: maxMessageBytes * 16 }), fc.nat(3))
    .map(([size, shape]): LabelledStep => {
      const pad = (prefix: string, suffix: string) =>
        `${prefix}${' '.repeat(Math.max(size - prefix.length - suffix.length, 0))}${suffix}`
      if (shape === 0) return textStep('oversized ping', pad('{"type":"ping"', '}'))
      if (shape === 1)
        return textStep(
          'oversized subscribe',
          pad('{"type":"subscribe","id":"big","payload":{"query":"', '"}}'),
        )
      if (shape === 2)
        return textStep(
          'oversized init',
          pad(`{"type":"connection_init","payload":{"token":"${goodToken}","x":"`, '"}}'),
        )
      return binaryStep('oversized binary', new Uint8Array(size).fill(0x7b))
    })
}

/** Well-formed client messages, in any order: init, subscribe, complete, ping, pong... */
export function wellFormedSteps(fixtures: FrameFixtures): fc.Arbitrary<LabelledStep> {
  return wellFormedFrames(fixtures).map((frame) =>
    textStep(typeLabel(frame), JSON.stringify(frame)),
  )
}

/** Frames that break the protocol: mutated, not a message, binary or oversized. */
export function hostileSteps(fixtures: FrameFixtures): fc.Arbitrary<LabelledStep> {
  return fc.oneof(
    { weight: 7, arbitrary: mutatedFrames(fixtures) },
    { weight: 2, arbitrary: notMessages.map((text) => textStep('not a message', text)) },
    { weight: 2, arbitrary: binaryFrames(fixtures).map((bytes) => binaryStep('binary', bytes)) },
    { weight: 3, arbitrary: oversizedFrames(fixtures) },
  )
}

/**
 * Whole connections: usually a good `connection_init` awaited first, then up to
 * `maxFrames` frames (well-formed in any order, with one hostile frame, or any mix), then a
 * sentinel ping; sometimes frames before (or without) init, an
 * init not awaited, or a connection dropped at once (rapid open/close).
 */
export function socketScripts(fixtures: FrameFixtures, maxFrames = 12): fc.Arbitrary<SocketScript> {
  const goodInit = textStep(
    'connection_init',
    JSON.stringify({ type: 'connection_init', payload: { token: fixtures.goodToken } }),
  )
  const awaitAck: LabelledStep = withToString({ kind: 'await-ack' }, () => 'await connection_ack')
  const opening = fc.oneof(
    { weight: 6, arbitrary: fc.constant([goodInit, awaitAck]) },
    { weight: 1, arbitrary: fc.constant([goodInit]) },
    { weight: 2, arbitrary: fc.constant([]) },
  )
  const valid = fc.array(wellFormedSteps(fixtures), { maxLength: maxFrames })
  const played = fc
    .record({
      opening,
      body: fc.oneof(
        // Out of order but well-formed; with one hostile frame somewhere; anything at all.
        { weight: 3, arbitrary: valid },
        {
          weight: 4,
          arbitrary: fc
            .tuple(valid, hostileSteps(fixtures), fc.nat())
            .map(([steps, hostile, at]) => steps.toSpliced(at % (steps.length + 1), 0, hostile)),
        },
        {
          weight: 2,
          arbitrary: fc.array(fc.oneof(wellFormedSteps(fixtures), hostileSteps(fixtures)), {
            maxLength: maxFrames,
          }),
        },
      ),
      ending: fc.oneof(
        { weight: 8, arbitrary: fc.constant('sentinel' as const) },
        { weight: 1, arbitrary: fc.constantFrom('close' as const, 'terminate' as const) },
      ),
    })
    .map(({ opening, body, ending }) => ({ steps: [...opening, ...body], ending }))
  const rapid = fc.constantFrom<SocketScript>(
    { steps: [], ending: 'abort-handshake' },
    { steps: [], ending: 'close' },
    { steps: [], ending: 'terminate' },
    { steps: [goodInit], ending: 'terminate' },
    { steps: [goodInit], ending: 'close' },
    {
      steps: [
        goodInit,
        awaitAck,
        textStep(
          'subscribe',
          JSON.stringify({ type: 'subscribe', id: '1', payload: fixtures.subscribePayloads[0] }),
        ),
      ],
      ending: 'terminate',
    },
  )
  return fc.oneof({ weight: 9, arbitrary: played }, { weight: 1, arbitrary: rapid })
}
