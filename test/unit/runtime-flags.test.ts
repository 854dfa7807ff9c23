import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { applyRuntimeFlags, RUNTIME_V8_FLAGS } from '../../gateway/runtime-flags.js'

const run = promisify(execFile)

describe('the V8 flags the gateway process sets for itself', () => {
  it('turns allocation-site pretenuring off', () => {
    expect(RUNTIME_V8_FLAGS).toContain('--no-allocation-site-pretenuring')
    expect(applyRuntimeFlags([])).toEqual(['--no-allocation-site-pretenuring'])
  })

  it('leaves a flag alone that the command line sets either way, in either spelling', () => {
    expect(applyRuntimeFlags(['--allocation-site-pretenuring'])).toEqual([])
    expect(applyRuntimeFlags(['--no-allocation_site_pretenuring'])).toEqual([])
    expect(applyRuntimeFlags(['--max-old-space-size=512', '--import', 'tsx'])).toEqual(['--no-allocation-site-pretenuring'])
  })

  it('are flags this Node knows (V8 only prints a misspelt one to stderr and carries on)', async () => {
    const script = "import('./gateway/runtime-flags.ts').then(m => m.applyRuntimeFlags())"
    const { stderr } = await run(process.execPath, ['--import', 'tsx', '-e', script], { cwd: new URL('../..', import.meta.url) })
    expect(stderr).toBe('')
  })
})
