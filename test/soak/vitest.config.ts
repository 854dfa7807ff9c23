/**
 * `npm run test:soak`: a bounded run of mixed traffic against two gateway
 * processes (SOAK_SECONDS, default 180), then a wait for every Redis key to
 * expire. Not part of CI; its files end in `.soak.ts`, so `npm test` skips them.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/soak/**/*.soak.ts'],
    // The traffic, plus the longest key TTL to wait out, plus start-up.
    testTimeout: (Number(process.env.SOAK_SECONDS ?? 180) + 600) * 1000,
    hookTimeout: 120_000,
  },
})
