/**
 * Property-based: whatever arrives, normaliseRequestPath either refuses it or
 * returns one canonical path that no server could read as something else.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { normaliseRequestPath, type NormalisedPath } from '../../gateway/proxy/normalise-path.js'
import { CONTROL, hostilePath, hostileSegment } from './fuzz-arbitraries.js'

const RUNS = 5000

const ENCODED_TRICK = /%(2f|5c|2e|25|3b|[01][0-9a-f]|7f)|%c2%[89][0-9a-f]/i

/** Every way an accepted path could still be read differently; empty when it is canonical and harmless. */
function ambiguities ({ path, segments }: NormalisedPath): string[] {
  const found: string[] = []
  if (!path.startsWith('/')) found.push('does not start with /')
  if (path.includes('//')) found.push('//')
  if (path.includes('\\')) found.push('backslash')
  if (ENCODED_TRICK.test(path)) found.push('encoded separator, dot, percent or control')
  if (/[^\x21-\x7e]/.test(path)) found.push('raw character outside printable ASCII')
  const encoded = path.split('/').slice(1)
  if (encoded.includes('.') || encoded.includes('..')) found.push('dot-segment')
  segments.forEach((segment, i) => {
    // Only the last segment may be empty: a trailing slash.
    if (segment === '' && i !== segments.length - 1) found.push(`empty segment ${i}`)
    if (segment === '.' || segment === '..') found.push(`dot-segment ${i}`)
    if (/[/\\]/.test(segment) || CONTROL.test(segment)) found.push(`separator or control in segment ${i}`)
    // Nothing folds (NFKC, as some servers do after matching) into a separator or a dot-segment.
    const folded = segment.normalize('NFKC')
    if (/[/\\]/.test(folded) || folded === '.' || folded === '..') found.push(`segment ${i} folds into path syntax`)
  })
  return found
}

describe('normaliseRequestPath under hostile input (property-based)', () => {
  it('never throws; refusals carry a reason', () => {
    fc.assert(fc.property(hostilePath, raw => {
      const result = normaliseRequestPath(raw)
      return result.ok || (typeof result.reason === 'string' && result.reason !== '')
    }), { numRuns: RUNS })
  })

  it('an accepted path has no dot-segment, empty segment, backslash, encoded separator, double encoding or control character', () => {
    fc.assert(fc.property(hostilePath, raw => {
      const result = normaliseRequestPath(raw)
      if (result.ok) expect(ambiguities(result), raw).toEqual([])
    }), { numRuns: RUNS })
  })

  it('the canonical path encodes exactly the decoded segments, and is its own canonical form', () => {
    fc.assert(fc.property(hostilePath, raw => {
      const result = normaliseRequestPath(raw)
      if (!result.ok) return true
      const decoded = result.path.split('/').slice(1).map(decodeURIComponent)
      return JSON.stringify(decoded) === JSON.stringify(result.segments) &&
        result.path === '/' + result.segments.map(encodeURIComponent).join('/') &&
        JSON.stringify(normaliseRequestPath(result.path)) === JSON.stringify(result)
    }), { numRuns: RUNS })
  })

  it('a path with a dot-segment, an empty inner segment, a backslash or an encoded slash, however disguised, is refused', () => {
    const trick = fc.constantFrom('..', '.', '%2e%2e', '%2E.', '.%2e', '%2e', '', 'a\\b', 'a%5cb', 'a%2fb', 'a%2Fb', '%252e%252e', '%c0%ae%c0%ae', '%ef%bc%8e%ef%bc%8e', '%e2%80%a5', 'a%ef%bc%8fb')
    fc.assert(fc.property(fc.array(hostileSegment, { maxLength: 3 }), trick, fc.array(hostileSegment, { minLength: 1, maxLength: 3 }), (before, disguised, after) => {
      return !normaliseRequestPath('/' + [...before, disguised, ...after].join('/')).ok
    }), { numRuns: RUNS })
  })
})
