import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // Pothos loads graphql's CommonJS build; point every import there so one copy of its
    // classes exists (otherwise "Cannot use GraphQLEnumType from another module or realm").
    alias: { graphql: 'graphql/index.js' },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file starts its own servers; two cores run two files at a time well.
    maxWorkers: 2,
    minWorkers: 1,
  },
})
