/**
 * The package as an app team gets it: declarations and ESM from `tsc`, every
 * `exports` entry present, no runtime dependency, and the browser part small.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const clientDir = fileURLToPath(new URL('..', import.meta.url))
const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url))
const BROWSER_BUDGET_BYTES = 10 * 1024

const bundle = (entry: string) => build({
  entryPoints: [join(clientDir, 'src', entry)],
  bundle: true,
  minify: true,
  format: 'esm',
  write: false,
  metafile: true,
  absWorkingDir: join(clientDir, '..'),
  logLevel: 'silent',
})

describe('bundle', () => {
  it(`keeps the browser part under ${BROWSER_BUDGET_BYTES / 1024} KB minified`, async () => {
    const { outputFiles } = await bundle('browser.ts')
    expect(outputFiles[0]!.contents.byteLength).toBeLessThan(BROWSER_BUDGET_BYTES)
  })

  it('needs nothing outside client/src (no runtime dependencies)', async () => {
    for (const entry of ['browser.ts', 'native.ts']) {
      const { metafile } = await bundle(entry)
      const inputs = Object.keys(metafile.inputs)
      expect(inputs.length).toBeGreaterThan(1)
      expect(inputs.filter(input => !input.startsWith('client/src/'))).toEqual([])
    }
  })
})

describe('build (tsc)', () => {
  let outDir: string
  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'bff-client-build-'))
    await promisify(execFile)(process.execPath, [tsc, '-p', join(clientDir, 'tsconfig.json'), '--outDir', outDir])
  })
  afterAll(() => rm(outDir, { recursive: true, force: true }))

  it('emits JavaScript and type declarations for every entry of package.json exports', async () => {
    const { exports } = JSON.parse(await readFile(join(clientDir, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> }
    const entries = Object.entries(exports).filter(([subpath]) => subpath !== './package.json')
    expect(entries.map(([subpath]) => subpath)).toEqual(['./browser', './native'])
    for (const [, targets] of entries) {
      for (const target of Object.values(targets as Record<string, string>)) {
        expect(target).toMatch(/^\.\/dist\//)
        expect(existsSync(join(outDir, target.slice('./dist/'.length))), target).toBe(true)
      }
    }
  })

  it('emits ES modules that load as they are', async () => {
    const browser = await import(pathToFileURL(join(outDir, 'browser.js')).href) as Record<string, unknown>
    const native = await import(pathToFileURL(join(outDir, 'native.js')).href) as Record<string, unknown>
    expect(typeof browser.createBffClient).toBe('function')
    expect(typeof native.createNativeBffClient).toBe('function')
    expect(typeof native.createWebCryptoKeyStore).toBe('function')
  })
})
