/**
 * The client library as the demo pages load it: client/src bundled by esbuild
 * into one ES module per entry point in demo/vendor/ (git-ignored). Built
 * where the demo is served from: `npm run demo` at start, the Docker image's
 * build stage, and the end-to-end tests' global setup, so the pages always
 * run the library as it is in client/src.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Entry point in client/src → the module the pages import, both relative to the repository. */
export const DEMO_CLIENT_MODULES = [
  { entry: 'client/src/browser.ts', module: 'demo/vendor/bff-client-browser.js' },
  { entry: 'client/src/native.ts', module: 'demo/vendor/bff-client-native.js' },
] as const

/** Writes demo/vendor/; the same sources give the same bytes. */
export async function buildDemoClient (): Promise<void> {
  await Promise.all(DEMO_CLIENT_MODULES.map(({ entry, module }) => build({
    entryPoints: [entry],
    outfile: module,
    absWorkingDir: ROOT,
    bundle: true,
    format: 'esm',
    // Unminified, so a reader of the demo can follow the library in the browser's devtools.
    target: 'es2022',
    banner: { js: `// Built from ${entry} (npm run build:demo): edit client/src, not this file.` },
    logLevel: 'warning',
  })))
}
