/**
 * The README and docs/ as a newcomer reads them: the configuration reference
 * names exactly the variables the config schema reads, the README stays short,
 * and no relative link leads nowhere.
 */
import { describe, expect, it } from 'vitest'
import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CONFIG_VARIABLES } from '../../gateway/config.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const README_MAX_BYTES = 12_288

const read = (path: string) => readFile(join(ROOT, path), 'utf8')

/** The text from `start` to `end` (or the end of the file); fails when a heading the test relies on is gone. */
function section (text: string, start: string, end?: string): string {
  const from = text.indexOf(start)
  expect(from, start).toBeGreaterThanOrEqual(0)
  const to = end === undefined ? text.length : text.indexOf(end, from)
  expect(to, end).toBeGreaterThan(from)
  return text.slice(from, to)
}

const variablesIn = (text: string) => new Set([...text.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map(m => m[1]!))

/** Markdown without fenced code blocks, where `](` is not a link. */
const prose = (markdown: string) => markdown.replace(/^```[\s\S]*?^```/gm, '')

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf (markdown: string): Set<string> {
  const headings = [...prose(markdown).matchAll(/^#{1,6}\s+(.+)$/gm)].map(m => m[1]!.trim())
  return new Set(headings.map(heading => heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')))
}

/** Every relative link of a Markdown file, as [target path from ROOT, anchor]. */
function relativeLinks (file: string, markdown: string): Array<[string, string | undefined]> {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)\)/g)]
    .map(m => m[1]!)
    .filter(target => !/^[a-z][a-z0-9+.-]*:/i.test(target))
    .map(target => {
      const [path, anchor] = target.split('#') as [string, string | undefined]
      return [path === '' ? file : relative(ROOT, join(ROOT, dirname(file), path)), anchor]
    })
}

async function exists (path: string): Promise<boolean> {
  return stat(join(ROOT, path)).then(() => true, () => false)
}

async function expectLinksResolve (file: string): Promise<void> {
  for (const [target, anchor] of relativeLinks(file, await read(file))) {
    expect(await exists(target), `${file} → ${target}`).toBe(true)
    if (anchor !== undefined && target.endsWith('.md')) {
      expect(anchorsOf(await read(target)), `${file} → ${target}#${anchor}`).toContain(anchor)
    }
  }
}

describe('configuration reference (docs/configuration.md)', () => {
  it('documents every variable the config schema reads, and no variable it does not', async () => {
    const reference = section(await read('docs/configuration.md'), '## Configuration reference', '## Route policy')
    const documented = variablesIn(reference)
    for (const name of CONFIG_VARIABLES) expect(documented, name).toContain(name)
    for (const name of documented) expect(CONFIG_VARIABLES, name).toContain(name)
  })
})

describe('README', () => {
  it(`is at most ${README_MAX_BYTES} bytes`, async () => {
    expect(Buffer.byteLength(await read('README.md'))).toBeLessThanOrEqual(README_MAX_BYTES)
  })

  it('names in its configuration table only variables the config schema reads', async () => {
    const table = section(await read('README.md'), '## Configuration', '## Endpoints')
    const named = variablesIn(table)
    expect(named.size).toBeGreaterThan(0)
    for (const name of named) expect(CONFIG_VARIABLES, name).toContain(name)
  })

  it('links only to files (and headings) that exist', async () => {
    expect(relativeLinks('README.md', await read('README.md')).length).toBeGreaterThan(0)
    await expectLinksResolve('README.md')
  })
})

describe('docs/', () => {
  it('links only to files (and headings) that exist, from every page', async () => {
    const pages = (await readdir(join(ROOT, 'docs'))).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)
    expect(pages.length).toBeGreaterThan(0)
    for (const page of [...pages, 'bench/README.md', 'bench/HISTORY.md']) await expectLinksResolve(page)
  })
})
