/**
 * The fan-out scenarios and the subscription documents, shared by the runner, the receivers
 * and the publisher so that every process derives the same assignment of subscribers to lots
 * and documents from a subscriber's index alone.
 */

/** Where the publisher hides its send time; receivers find it without parsing JSON. */
export const MARK = 'bench|'

/** `customerName` of a published event: `bench|<phase>|<epoch ms with fraction>`. */
export function stampFor(phase: number, sentAt: number): string {
  return `${MARK}${phase}|${sentAt}`
}

/** Wall-clock ms with sub-ms precision, comparable across processes on this machine. */
export const wallClock = (): number => performance.timeOrigin + performance.now()

/** A subscription document and how to build its variables for a lot. */
export interface SubscriptionDoc {
  readonly name: string
  query(lotId: string): string
  variables(lotId: string): Record<string, unknown>
}

const byVariable = (selection: string, name: string): SubscriptionDoc => ({
  name,
  query: () =>
    `subscription Parking($lotId: ID!) { parkingUpdated(lotId: $lotId) { ${selection} } }`,
  variables: (lotId) => ({ lotId }),
})

/** The document every scenario uses; the mixed scenario adds the others. */
export const FULL_DOC = byVariable(
  '__typename ... on Event { seq cursor } ... on SpaceStateChanged { spaceNumber state previousState customerName }',
  'full',
)

/** The mixed scenario's documents: other selections, aliases, an inline argument, `after`. */
export const MIXED_DOCS: readonly SubscriptionDoc[] = [
  FULL_DOC,
  byVariable('... on SpaceStateChanged { customerName }', 'minimal'),
  {
    name: 'aliased-inline-lot',
    query: (lotId) =>
      `subscription { update: parkingUpdated(lotId: ${JSON.stringify(lotId)}) { kind: __typename ... on SpaceStateChanged { space: spaceNumber now: state who: customerName changedAt } } }`,
    variables: () => ({}),
  },
  {
    name: 'wide-with-after',
    query: () =>
      'subscription Wide($lotId: ID!, $after: String) { parkingUpdated(lotId: $lotId, after: $after) { ... on Event { channel seq publishedAt } ... on SpaceStateChanged { lotId spaceNumber state vehiclePlate customerName } } }',
    variables: (lotId) => ({ lotId, after: null }),
  },
]

/** One fan-out scenario. */
export interface Scenario {
  readonly key: string
  readonly title: string
  /** Lot ids are `<lotPrefix>` (one channel) or `<lotPrefix>-<c>`. */
  readonly lotPrefix: string
  /** Channels (lots) published to. */
  readonly channels: number
  /** Subscribers (one connection, one subscription each) per channel. */
  readonly perChannel: number
  /** Documents, assigned round-robin by subscriber index. */
  readonly docs: readonly SubscriptionDoc[]
  /**
   * Keeps the first subscribers of the scenario before (same lots and documents) and closes
   * the others, instead of connecting afresh.
   */
  readonly reuses: boolean
  /** Events per channel in the throughput burst. */
  readonly burstPerChannel: number
  /** Offered load of the latency phase, in delivered messages/s. */
  readonly offeredPerSecond: number
  /** Whether idle memory per connection is measured on this scenario. */
  readonly idleMemory: boolean
  /** A warm-up on a fresh server: a burst only, reported nowhere. */
  readonly warmup: boolean
}

/** Subscribers of a scenario. */
export const subscribersOf = (scenario: Scenario): number => scenario.channels * scenario.perChannel

/** The lot of channel `c` of a scenario. */
export const lotOf = (scenario: Scenario, channel: number): string =>
  scenario.channels === 1 ? scenario.lotPrefix : `${scenario.lotPrefix}-${channel}`

/** Every lot of a scenario. */
export const lotsOf = (scenario: Scenario): string[] =>
  Array.from({ length: scenario.channels }, (_, c) => lotOf(scenario, c))

/** Which lot and document subscriber `index` of a scenario uses. */
export function assignment(
  scenario: Scenario,
  index: number,
): { lotId: string; doc: SubscriptionDoc } {
  const lotId = lotOf(scenario, index % scenario.channels)
  const doc = scenario.docs[Math.floor(index / scenario.channels) % scenario.docs.length]
  if (!doc) throw new Error(`scenario ${scenario.key} has no documents`)
  return { lotId, doc }
}

/** Scenario sizes, scaled down in quick mode. */
export interface ScenarioSizes {
  /** Messages a single-channel burst aims at (events = this / subscribers, at least 1). */
  readonly burstMessages: number
  /** Subscribers of the largest single-channel scenario (10,000 in a full run). */
  readonly scale: number
}

/**
 * The scenarios in run order: a small warm-up; the 10k channel, so idle memory is measured on
 * a process that has run each code path once but held no crowd yet; 5k and 1k on the same
 * channel (the first subscribers of the 10k stay, the others close); many lots; mixed
 * documents.
 */
export function makeScenarios({ burstMessages, scale }: ScenarioSizes): Scenario[] {
  const perBurst = (messages: number, subscribers: number) =>
    Math.max(1, Math.round(messages / subscribers))
  const oneChannel = (n: number, first: boolean): Scenario => ({
    key: `one-${n}`,
    title: `1 channel × ${n.toLocaleString('en-US')}`,
    lotPrefix: 'hot',
    channels: 1,
    perChannel: n,
    docs: [FULL_DOC],
    reuses: !first,
    burstPerChannel: perBurst(burstMessages, n),
    offeredPerSecond: 5_000,
    idleMemory: first,
    warmup: false,
  })
  const lots = Math.max(10, Math.round(scale / 10))
  const mixed = Math.max(MIXED_DOCS.length, Math.round(scale / 5))
  return [
    {
      key: 'warmup',
      title: 'warm-up',
      lotPrefix: 'warmup',
      channels: 2,
      perChannel: 250,
      docs: MIXED_DOCS,
      reuses: false,
      burstPerChannel: 20,
      offeredPerSecond: 5_000,
      idleMemory: false,
      warmup: true,
    },
    oneChannel(scale, true),
    oneChannel(Math.round(scale / 2), false),
    oneChannel(Math.round(scale / 10), false),
    {
      key: 'lots',
      title: `${lots.toLocaleString('en-US')} lots × 10`,
      lotPrefix: 'lot',
      channels: lots,
      perChannel: 10,
      docs: [FULL_DOC],
      reuses: false,
      // Every event here costs a publish (a database append for Switchboard), so fewer.
      burstPerChannel: perBurst(burstMessages / 5, lots * 10),
      offeredPerSecond: 500,
      idleMemory: false,
      warmup: false,
    },
    {
      key: 'mixed',
      title: `1 channel × ${mixed.toLocaleString('en-US')}, ${MIXED_DOCS.length} documents`,
      lotPrefix: 'mixed',
      channels: 1,
      perChannel: mixed,
      docs: MIXED_DOCS,
      reuses: false,
      burstPerChannel: perBurst(burstMessages, mixed),
      offeredPerSecond: 5_000,
      idleMemory: false,
      warmup: false,
    },
  ]
}
