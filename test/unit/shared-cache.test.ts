/**
 * An answer meant for one signed-in user, as shared caches get it: Cache-Control
 * made private (the upstream's other directives kept as sent), and no header
 * that speaks to a CDN directly.
 */
import { describe, expect, it } from 'vitest'
import { isTargetedCacheHeader, privateCacheControl } from '../../gateway/proxy/shared-cache.js'

describe('privateCacheControl', () => {
  it.each<[string | string[] | undefined, string]>([
    [undefined, 'no-store'],
    ['', 'no-store'],
    [' , ,', 'no-store'],
    ['public', 'private'],
    ['private', 'private'],
    ['max-age=600', 'private, max-age=600'],
    ['public, max-age=600', 'private, max-age=600'],
    ['max-age=60, s-maxage=3600, proxy-revalidate', 'private, max-age=60'],
    ['no-store', 'private, no-store'],
    ['no-cache, must-revalidate, max-age=0', 'private, no-cache, must-revalidate, max-age=0'],
    ['private="set-cookie", max-age=60', 'private, max-age=60'],
    ['PUBLIC, Max-Age=60', 'private, Max-Age=60'],
    [' public ,max-age=60 ,  S-MaxAge = 99 ', 'private, max-age=60'],
    ['public,,max-age=60', 'private, max-age=60'],
    ['no-cache="set-cookie, x-token", public', 'private, no-cache="set-cookie, x-token"'],
    ['no-cache="a \\" , public", max-age=5', 'private, no-cache="a \\" , public", max-age=5'],
    ['private="x, y", public', 'private'],
    ['stale-while-revalidate=30, immutable', 'private, stale-while-revalidate=30, immutable'],
    [['public', 'max-age=60'], 'private, max-age=60'],
    [['s-maxage=60', 'no-cache'], 'private, no-cache'],
  ])('%j → %s', (upstream, expected) => {
    expect(privateCacheControl(upstream)).toBe(expected)
  })
})

describe('isTargetedCacheHeader', () => {
  it.each([
    'cdn-cache-control', 'cloudflare-cdn-cache-control', 'vercel-cdn-cache-control', 'akamai-cache-control',
    'surrogate-control', 'surrogate-key', 'cache-tag', 'edge-control', 'edge-cache-tag', 'x-accel-expires', 'xkey',
  ])('%s addresses a shared cache', (name) => {
    expect(isTargetedCacheHeader(name)).toBe(true)
  })

  it.each(['cache-control', 'expires', 'etag', 'vary', 'last-modified', 'age', 'pragma'])('%s does not', (name) => {
    expect(isTargetedCacheHeader(name)).toBe(false)
  })
})
