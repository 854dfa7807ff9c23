import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { CONFIG_VARIABLES } from '../../gateway/config.js'

describe('README configuration reference', () => {
  it('documents every variable the config schema reads, and no variable it does not', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const section = readme.slice(readme.indexOf('## Configuration reference'), readme.indexOf('### Route policy'))
    const documented = new Set([...section.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map(m => m[1]))
    for (const name of CONFIG_VARIABLES) expect(documented, name).toContain(name)
    for (const name of documented) expect(CONFIG_VARIABLES, name).toContain(name)
  })
})
