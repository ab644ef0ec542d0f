import { Kind } from 'graphql'
import { badInput } from '../errors.js'
import type { Json } from '../events/event-map.js'
import { builder } from './builder.js'

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/

function parseDateTime(value: unknown): string {
  if (typeof value !== 'string' || !ISO_DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw badInput('DateTime', `expected an ISO 8601 date-time, got ${JSON.stringify(value)}`)
  }
  return new Date(value).toISOString()
}

builder.scalarType('DateTime', {
  description: 'An ISO 8601 date-time in UTC, e.g. 2026-11-23T18:10:00.000Z.',
  serialize: (value) => value,
  parseValue: parseDateTime,
  parseLiteral: (ast) =>
    parseDateTime(ast.kind === Kind.STRING ? ast.value : `(${ast.kind.toLowerCase()})`),
})

function literalToJson(ast: import('graphql').ValueNode): Json {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.ENUM:
      return ast.value
    case Kind.BOOLEAN:
      return ast.value
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value)
    case Kind.NULL:
      return null
    case Kind.LIST:
      return ast.values.map(literalToJson)
    case Kind.OBJECT:
      return Object.fromEntries(
        ast.fields.map((field) => [field.name.value, literalToJson(field.value)]),
      )
    case Kind.VARIABLE:
      throw badInput('JSON', 'variables inside JSON literals are not supported')
  }
}

builder.scalarType('JSON', {
  description: 'Any JSON value, carried as is.',
  serialize: (value) => value,
  parseValue: (value) => value as Json,
  parseLiteral: literalToJson,
})
