/**
 * The multipart guard: a body passes through byte for byte however it is cut
 * into chunks, and a refused part stops the body before its header block has
 * been passed on whole.
 */
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { MAX_PART_HEADER_BYTES, multipartGuard } from '../../gateway/proxy/multipart-guard.js'

const BOUNDARY = '----WebKitFormBoundary7MA4YWxkTrZu0gW'
const REFUSED = new Error('refused')
const refuseMethod = (headers: string) => /name="_method"/.test(headers) ? REFUSED : undefined

function part (name: string, value: string, lineEnd = '\r\n'): string {
  return [`--${BOUNDARY}`, `Content-Disposition: form-data; name="${name}"`, '', value].join(lineEnd) + lineEnd
}

function multipart (...parts: string[]): string {
  return parts.join('') + `--${BOUNDARY}--\r\n`
}

/** What passed through before the guard stopped (or the whole body), and its error if it stopped. */
async function guard (chunks: Buffer[], check = refuseMethod): Promise<{ passed: Buffer, error?: Error }> {
  const out: Buffer[] = []
  const guarded = multipartGuard(BOUNDARY, check)
  // Read as it is pushed: an iterator would drop what was still buffered when the stream failed.
  guarded.on('data', (chunk: Buffer) => out.push(chunk))
  Readable.from(chunks).pipe(guarded)
  try {
    await finished(guarded)
    return { passed: Buffer.concat(out) }
  } catch (error) {
    return { passed: Buffer.concat(out), error: error as Error }
  }
}

/** `text` cut at the given places. */
function cut (text: string, places: number[]): Buffer[] {
  const bytes = Buffer.from(text, 'latin1')
  const at = [...new Set(places.map(place => place % (bytes.length + 1)))].sort((a, b) => a - b)
  return [0, ...at].map((start, i) => bytes.subarray(start, at[i] ?? bytes.length)).filter(chunk => chunk.length > 0)
}

const values = fc.constantFrom('1', 'DELETE', '', 'name="_method"\r\n\r\n', `-${BOUNDARY.slice(0, 10)}`, 'x'.repeat(300), '\r\n--\r\n')
const names = fc.constantFrom('item', 'file', '_methods', 'method')

describe('multipartGuard', () => {
  it('passes a body without a refused part through unchanged, however it is cut', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(names, values), { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (fields, places) => {
        const body = multipart(...fields.map(([name, value]) => part(name, value)))
        const { passed, error } = await guard(cut(body, places))
        expect(error).toBeUndefined()
        expect(passed.toString('latin1')).toBe(body)
      }
    ), { numRuns: 300 })
  })

  it('stops a body with a refused part before that part\'s headers have gone whole, however it is cut', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(names, values), { maxLength: 4 }),
      fc.array(fc.tuple(names, values), { maxLength: 3 }),
      fc.constantFrom('\r\n', '\n'),
      fc.array(fc.nat(), { maxLength: 12 }),
      async (before, after, lineEnd, places) => {
        const head = before.map(([name, value]) => part(name, value)).join('')
        const refused = part('_method', 'DELETE', lineEnd)
        const body = multipart(head, refused, ...after.map(([name, value]) => part(name, value)))
        const { passed, error } = await guard(cut(body, places))
        expect(error).toBe(REFUSED)
        const refusedHeadersEnd = head.length + refused.indexOf(`${lineEnd}${lineEnd}`) + 2 * lineEnd.length
        expect(passed.length).toBeLessThan(refusedHeadersEnd)
        expect(body.startsWith(passed.toString('latin1'))).toBe(true)
      }
    ), { numRuns: 300 })
  })

  it('checks the headers of a body that ends inside them, and passes nothing of them when refused', async () => {
    const body = part('item', '1') + `--${BOUNDARY}\r\nContent-Disposition: form-data; name="_method"`
    const { passed, error } = await guard(cut(body, [3, 50, 90]))
    expect(error).toBe(REFUSED)
    expect(passed.toString('latin1')).toBe(part('item', '1'))
  })

  it('finds a delimiter that is not at the start of a line', async () => {
    const body = `preamble--${BOUNDARY}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${BOUNDARY}--\r\n`
    expect((await guard([Buffer.from(body)])).error).toBe(REFUSED)
  })

  it(`refuses a part with more than ${MAX_PART_HEADER_BYTES} bytes of headers, complete or not`, async () => {
    const long = `X-Padding: ${'p'.repeat(MAX_PART_HEADER_BYTES)}`
    const complete = multipart(`--${BOUNDARY}\r\n${long}\r\nContent-Disposition: form-data; name="item"\r\n\r\n1\r\n`)
    const unfinished = `--${BOUNDARY}\r\n${long}${long}`
    for (const body of [complete, unfinished]) {
      const { passed, error } = await guard(cut(body, [100, 5000, 9000]))
      expect(error).toMatchObject({ code: 'BFF_INVALID_REQUEST', statusCode: 400 })
      expect(passed.length).toBe(0)
    }
  })

  it('hands the check each part\'s header block', async () => {
    const seen: string[] = []
    const body = multipart(part('a', '1'), part('b', '2', '\n'))
    await guard(cut(body, [10, 20, 70]), (headers) => { seen.push(headers); return undefined })
    expect(seen).toEqual([
      '\r\nContent-Disposition: form-data; name="a"\r\n\r\n',
      '\nContent-Disposition: form-data; name="b"\n\n',
      '--\r\n',
    ])
  })
})
