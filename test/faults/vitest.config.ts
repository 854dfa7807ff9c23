/**
 * `npm run test:faults`: the fault and hostile-input suite (real Redis processes
 * killed and stalled, upstreams and the IdP down or slow, gateways restarted under
 * load). Its files end in `.fault.ts`, so `npm test` does not pick them up.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/faults/**/*.fault.ts'],
    // Every file runs its own redis-server, IdP, API and gateways; two cores.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
