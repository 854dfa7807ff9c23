import { configDefaults, defineConfig } from 'vitest/config'

// Integration and end-to-end files start real redis-server, IdP, gateway (and
// Chromium) processes per file; two cores, so keep file-level parallelism modest.
const timeouts = { testTimeout: 30_000, hookTimeout: 60_000 }

export default defineConfig({
  test: {
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
    // All run by default (`npm test`); `--project node`, `--project e2e` or `--project client` picks one.
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/e2e/**'],
          ...timeouts,
        },
      },
      {
        // The client library (client/): unit tests on fakes of fetch and the page, one file on the real stack.
        test: {
          name: 'client',
          include: ['client/test/**/*.test.ts'],
          ...timeouts,
        },
      },
      {
        // Real Chromium (/usr/bin/chromium, or CHROMIUM_PATH) against a full stack.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // The demo pages' bundles of the client library, built once before any file starts a gateway.
          globalSetup: ['test/e2e/build-demo-client.ts'],
          ...timeouts,
        },
      },
    ],
  },
})
