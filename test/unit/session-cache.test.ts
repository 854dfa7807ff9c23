/**
 * The in-process session cache on its own: what it serves, for how long, and
 * what a full cache gives up first. (Invalidation across instances is in
 * test/integration/session-cache.test.ts.)
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createSessionCache } from '../../gateway/session/session-cache.js'
import type { ActiveSession } from '../../gateway/session/sessions.js'

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
