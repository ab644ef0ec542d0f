import {
  execute,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isCompositeType,
  isInputObjectType,
  isNonNullType,
  parse,
  validate,
} from 'graphql'
import type { Viewer } from '../auth/viewer.js'
import { ConfigError } from '../config.js'
import type { Context } from '../context.js'
import { badInput, ErrorCode } from '../errors.js'

/** The identity ingested notifications publish as: a built-in backend service. */
export const NOTIFY_INGEST_VIEWER: Viewer = Object.freeze({
  sub: 'notify-ingest',
  role: 'service',
  scopes: new Set<string>(),
  expiresAt: undefined,
})

/**
 * Publishes one notification's payload on the mutation its channel maps to. Rejects with a
 * `GraphQLError` carrying `extensions.code` when the payload is not JSON (`BAD_USER_INPUT`),
 * does not fit the mutation's input (`BAD_USER_INPUT`) or the mutation fails (its own code,
 * `INTERNAL_SERVER_ERROR` for unexpected errors); nothing is appended then.
 */
export type ExecutePublish = (channel: string, payload: string) => Promise<void>

export interface NotifyPublishOptions {
  /** The app's schema: ingested publishes run the very resolvers an HTTP publish runs. */
  readonly schema: GraphQLSchema
  /** PostgreSQL channel → publish mutation whose `input` the payload is (`NOTIFY_CHANNELS`). */
  readonly channels: ReadonlyMap<string, string>
  /** Makes the context of each ingested publish, normally with `NOTIFY_INGEST_VIEWER` as viewer. */
  readonly context: () => Context
}

/** Builds the one-field mutation document for `mutationName`, or says why it cannot. */
function publishDocument(schema: GraphQLSchema, channel: string, mutationName: string) {
  const mapping = `NOTIFY_CHANNELS: ${channel}=${mutationName}`
  const field = schema.getMutationType()?.getFields()[mutationName]
  if (!field) throw new ConfigError(`${mapping}: there is no mutation "${mutationName}"`)
  const arg = field.args.find(({ name }) => name === 'input')
  const othersOptional = field.args.every(
    (other) => other === arg || !isNonNullType(other.type) || other.defaultValue !== undefined,
  )
  if (!arg || !isInputObjectType(getNullableType(arg.type)) || !othersOptional) {
    throw new ConfigError(
      `${mapping}: "${mutationName}" is not a publish mutation taking its data in one "input" argument`,
    )
  }
  const selection = isCompositeType(getNamedType(field.type)) ? ' { __typename }' : ''
  const document = parse(
    `mutation NotifyIngest($input: ${String(arg.type)}) { ${mutationName}(input: $input)${selection} }`,
  )
  const errors = validate(schema, document)
  if (errors.length > 0) throw new ConfigError(`${mapping}: ${errors[0]?.message}`)
  return document
}

/**
 * The error of a failed execution, with a code. An error without a path happened before any
 * resolver ran (the payload does not fit the variable types): bad input. One inside a resolver
 * without a code is unexpected.
 */
function withCode(error: GraphQLError): GraphQLError {
  if (typeof error.extensions['code'] === 'string') return error
  const code = error.path ? 'INTERNAL_SERVER_ERROR' : ErrorCode.BAD_USER_INPUT
  return new GraphQLError(error.message, {
    ...(error.originalError ? { originalError: error.originalError } : {}),
    extensions: { ...error.extensions, code },
  })
}

/**
 * Checks every mapping against the schema and returns the function that publishes a
 * notification through it. Throws `ConfigError` naming the mapping when a mutation is unknown
 * or is not a publish mutation taking its data in one `input` argument (other arguments, such
 * as `idempotencyKey`, must be optional: the payload only fills `input`).
 */
export function createNotifyPublish({
  schema,
  channels,
  context,
}: NotifyPublishOptions): ExecutePublish {
  const documents = new Map(
    [...channels].map(([channel, mutation]) => [
      channel,
      publishDocument(schema, channel, mutation),
    ]),
  )
  return async (channel, payload) => {
    const document = documents.get(channel)
    if (!document) throw badInput('channel', `"${channel}" is not in NOTIFY_CHANNELS`)
    let input: unknown
    try {
      input = JSON.parse(payload)
    } catch (error) {
      throw badInput('payload', `not valid JSON (${(error as Error).message})`)
    }
    const result = await execute({
      schema,
      document,
      variableValues: { input },
      contextValue: context(),
    })
    const [error] = result.errors ?? []
    if (error) throw withCode(error)
  }
}
