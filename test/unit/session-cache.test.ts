/**
 * The in-process session cache on its own: what it serves, for how long, and
 * what a full cache gives up first. (Invalidation across instances is in
 * test/integration/session-cache.test.ts.)
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createSessionCache } from '../../gateway/session/session-cache.js'
import type { ActiveSession } from '../../gateway/session/sessions.js'
import { estimateSessionBytes } from '../../gateway/session/session-footprint.js'

function session (handle: string, sub = 'alice'): ActiveSession {
  return { handle, meta: { sub }, cookie: { key: randomBytes(32) } } as unknown as ActiveSession
}

function trustedCache (maxEntries: number, at: { now: number }) {
  const cache = createSessionCache({ maxEntries, ttlMs: 60_000, now: () => at.now })
  cache.trust()
  return cache
}

const cached = (cache: ReturnType<typeof createSessionCache>, s: ActiveSession, at = 0) => cache.get(s.handle, s.cookie.key, at) !== undefined

describe('session cache', () => {
  it('serves a stored session only with its own key, and only until its time to live', () => {
    const clock = { now: 0 }
    const cache = trustedCache(10, clock)
    const a = session('a')
    cache.set(a, cache.generation)
    expect(cache.get('a', a.cookie.key, 0)).toBe(a)
    expect(cache.get('a', Buffer.from(a.cookie.key), 0)).toBe(a)
    expect(cache.get('a', randomBytes(32), 0)).toBeUndefined()
    expect(cache.get('a', a.cookie.key, 60_001)).toBeUndefined()
  })

  it('when full, gives up the oldest session nobody read since it was stored', () => {
    const cache = trustedCache(2, { now: 0 })
    const [a, b, c] = [session('a'), session('b'), session('c')]
    cache.set(a, cache.generation)
    cache.set(b, cache.generation)
    expect(cached(cache, a)).toBe(true)
    cache.set(c, cache.generation)
    expect([cached(cache, a), cached(cache, b), cached(cache, c)]).toEqual([true, false, true])
  })

  it('when every session was read, gives up the oldest, never the one just stored', () => {
    const cache = trustedCache(2, { now: 0 })
    const [a, b, c] = [session('a'), session('b'), session('c')]
    cache.set(a, cache.generation)
    cache.set(b, cache.generation)
    expect(cached(cache, a) && cached(cache, b)).toBe(true)
    cache.set(c, cache.generation)
    expect([cached(cache, a), cached(cache, b), cached(cache, c)]).toEqual([false, true, true])
  })

  it('serves nothing while distrusted, and drops a user\'s sessions when told', () => {
    const cache = trustedCache(10, { now: 0 })
    const [a, b] = [session('a', 'alice'), session('b', 'bob')]
    cache.set(a, cache.generation)
    cache.set(b, cache.generation)
    cache.invalidateUser('alice')
    expect([cached(cache, a), cached(cache, b)]).toEqual([false, true])
    cache.distrust()
    cache.set(b, cache.generation)
    expect(cached(cache, b)).toBe(false)
  })
})

describe('session cache: a memory budget', () => {
  // Sizes chosen by the test: the budget's logic on its own, apart from how sizes are estimated.
  function budgetCache (options: { maxBytes: number, maxEntries?: number }, sizes: Record<string, number>) {
    const cache = createSessionCache({ ...options, ttlMs: 60_000, now: () => 0, sizeOf: s => sizes[s.handle]! })
    cache.trust()
    return cache
  }

  it('holds sessions while their bytes fit, then gives up the oldest unread ones until the newest fits', () => {
    const cache = budgetCache({ maxBytes: 1000 }, { a: 300, b: 300, c: 300, d: 500 })
    const [a, b, c, d] = [session('a'), session('b'), session('c'), session('d')]
    for (const s of [a, b, c]) cache.set(s, cache.generation)
    expect(cache.stats).toMatchObject({ entries: 3, bytes: 900 })
    expect(cached(cache, b)).toBe(true)
    cache.set(d, cache.generation)
    // 1400 bytes: a (unread) goes, b was read and gets a second chance, c (unread) goes.
    expect([cached(cache, a), cached(cache, b), cached(cache, c), cached(cache, d)]).toEqual([false, true, false, true])
    expect(cache.stats).toMatchObject({ entries: 2, bytes: 800 })
  })

  it('keeps the many small sessions a count could not tell from a few large ones', () => {
    const sizes = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${i}`, 50]))
    const cache = budgetCache({ maxBytes: 1000 }, { ...sizes, large: 900 })
    for (let i = 0; i < 20; i++) cache.set(session(`s${i}`), cache.generation)
    expect(cache.stats).toMatchObject({ entries: 20, bytes: 1000 })
    cache.set(session('large'), cache.generation)
    expect(cache.stats).toMatchObject({ entries: 3, bytes: 1000 })
  })

  it('never keeps a session larger than the whole budget, and gives up nothing for it', () => {
    const cache = budgetCache({ maxBytes: 1000 }, { a: 400, huge: 1001 })
    const [a, huge] = [session('a'), session('huge')]
    cache.set(a, cache.generation)
    cache.set(huge, cache.generation)
    expect([cached(cache, a), cached(cache, huge)]).toEqual([true, false])
    expect(cache.stats).toMatchObject({ entries: 1, bytes: 400 })
  })

  it('counts a session stored again once, and gives its bytes back when it goes, however it goes', () => {
    const cache = budgetCache({ maxBytes: 10_000 }, { a: 100, b: 200, c: 400 })
    const [a, b, c] = [session('a', 'alice'), session('b', 'bob'), session('c', 'carol')]
    for (const s of [a, b, c, a]) cache.set(s, cache.generation)
    expect(cache.stats).toMatchObject({ entries: 3, bytes: 700 })
    cache.invalidateSession('a')
    expect(cache.stats).toMatchObject({ entries: 2, bytes: 600 })
    cache.invalidateUser('bob')
    expect(cache.stats).toMatchObject({ entries: 1, bytes: 400 })
    cache.invalidateAll()
    expect(cache.stats).toMatchObject({ entries: 0, bytes: 0 })
  })

  it('gives an expired session\'s bytes back when a read finds it past its time to live', () => {
    const clock = { now: 0 }
    const cache = createSessionCache({ maxBytes: 1000, ttlMs: 60_000, now: () => clock.now, sizeOf: () => 100 })
    cache.trust()
    const a = session('a')
    cache.set(a, cache.generation)
    expect(cache.get('a', a.cookie.key, 60_001)).toBeUndefined()
    expect(cache.stats).toMatchObject({ entries: 0, bytes: 0 })
  })

  it('also caps the number of sessions when SESSION_CACHE_SIZE asks for it', () => {
    const cache = budgetCache({ maxBytes: 1_000_000, maxEntries: 2 }, { a: 10, b: 10, c: 10 })
    for (const handle of ['a', 'b', 'c']) cache.set(session(handle), cache.generation)
    expect(cache.stats).toMatchObject({ entries: 2, bytes: 20 })
  })

  it('sizes sessions by the estimate unless told otherwise', () => {
    const cache = createSessionCache({ maxBytes: 1_000_000, ttlMs: 60_000 })
    cache.trust()
    const a = session('a')
    cache.set(a, cache.generation)
    expect(cache.stats.bytes).toBe(estimateSessionBytes(a))
  })
})

describe('session cache: hits and misses', () => {
  it('counts a lookup answered as a hit, and one a trusted cache could not answer as a miss', () => {
    const clock = { now: 0 }
    const cache = trustedCache(10, clock)
    const [a, b] = [session('a'), session('b')]
    cache.set(a, cache.generation)
    cache.get('a', a.cookie.key, 0)
    cache.get('a', a.cookie.key, 0)
    expect(cache.stats).toMatchObject({ hits: 2, misses: 0 })
    // Not cached; cached under another key; past its time to live.
    cache.get('b', b.cookie.key, 0)
    cache.get('a', b.cookie.key, 0)
    cache.get('a', a.cookie.key, 60_001)
    expect(cache.stats).toMatchObject({ hits: 2, misses: 3 })
  })

  it('counts neither while distrusted: every request then reads the store, and bff_session_cache_trusted says so', () => {
    const cache = trustedCache(10, { now: 0 })
    const a = session('a')
    cache.set(a, cache.generation)
    cache.distrust()
    cache.get('a', a.cookie.key, 0)
    expect(cache.stats).toMatchObject({ hits: 0, misses: 0, entries: 0, bytes: 0 })
  })
})
