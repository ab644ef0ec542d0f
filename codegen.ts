import type { CodegenConfig } from '@graphql-codegen/cli'

/**
 * Typed documents for the tests (and any TypeScript client): every operation in
 * `test/documents/*.graphql`, typed against the committed schema. `npm run codegen`.
 */
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: 'test/documents/**/*.graphql',
  generates: {
    'test/generated/graphql.ts': {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false },
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
      },
    },
  },
}

export default config
