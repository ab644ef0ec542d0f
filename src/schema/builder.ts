import SchemaBuilder from '@pothos/core'
import type { Context } from '../context.js'
import type { Json } from '../events/event-map.js'

/** The Pothos builder. Defines no types: each domain file adds its own. */
export const builder = new SchemaBuilder<{
  Context: Context
  DefaultFieldNullability: false
  Scalars: {
    DateTime: { Input: string; Output: string }
    JSON: { Input: Json; Output: Json }
  }
}>({ defaultFieldNullability: false })

builder.queryType({})
builder.mutationType({})
builder.subscriptionType({})
