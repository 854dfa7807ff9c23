/**
 * An in-process cache of opened sessions, so the hot path (a signed-in user's
 * API call) costs no Redis round trip and no decryption.
 *
 * It is only trusted while the invalidation channel is up: every write that
 * changes a session's validity or tokens is announced on it, and any message
 * — or the loss of the channel — evicts what it names before the next read.
 * A read that raced with an invalidation is not cached (the generation check),
 * so an entry can never be older than the last announcement.
 *
 * It is bounded by memory: each session's heap bytes are estimated once, when
 * it is stored, and the oldest unread sessions go while the sum is over the
 * budget (optionally also over a count). Sessions differ in size by several
 * times (narrowed tokens, DPoP keys, claims), so a count alone bounds nothing.
 */
import { timingSafeEqual } from 'node:crypto'
import type { ActiveSession } from './active-session.js'
import { estimateSessionBytes } from './session-footprint.js'

/** What the cache has done and holds, read at scrape time (`bff_session_cache_*`). */
export interface SessionCacheStats {
  /** Lookups answered from the cache, since start. */
  readonly hits: number
  /** Lookups on a trusted cache that found nothing usable (absent, past its time to live, another key), since start. */
  readonly misses: number
  readonly entries: number
  /** The estimated heap bytes of the sessions held (see session-footprint.ts). */
  readonly bytes: number
}

export interface SessionCache {
  /** True while the invalidation channel is up; otherwise nothing is served or stored. */
  readonly trusted: boolean
  /** Changes with every invalidation; a read started at an older generation is not cached. */
  readonly generation: number
  /** `at`: the caller's current time, so one request reads the clock once. */
  get (handle: string, key: Buffer, at: number): ActiveSession | undefined
  set (session: ActiveSession, generationAtRead: number): void
  invalidateSession (handle: string): void
  invalidateUser (sub: string): void
  invalidateAll (): void
  /** The channel is up (again): start trusting, from empty. */
  trust (): void
  /** The channel is down: drop everything and stop trusting until `trust()`. */
  distrust (): void
  readonly stats: SessionCacheStats
}

export interface SessionCacheOptions {
  /** The budget: estimated heap bytes of the sessions held. None: no byte limit. */
  maxBytes?: number
  /** A cap on the number of sessions held, beside the budget. None: no count limit. */
  maxEntries?: number
  /** A safety net only: invalidation is what keeps entries correct. */
  ttlMs: number
  now?: () => number
  /** Estimated heap bytes of a session; the real estimate unless a test gives sizes of its own. */
  sizeOf?: (session: ActiveSession) => number
}

/** `used`: read since it was stored or last given a second chance; `bytes`: its estimate, made once. */
interface Entry { session: ActiveSession, cachedAt: number, used: boolean, bytes: number }

export function createSessionCache (options: SessionCacheOptions): SessionCache {
  const now = options.now ?? Date.now
  const sizeOf = options.sizeOf ?? estimateSessionBytes
  const maxBytes = options.maxBytes ?? Infinity
  const maxEntries = options.maxEntries ?? Infinity
  // A Map iterates in insertion order, oldest first. Eviction gives a used entry a second chance
  // (it moves to the back, unmarked) instead of re-inserting it on every hit: a hit is then one
  // field write, which matters on the path every API call takes.
  const entries = new Map<string, Entry>()
  const byUser = new Map<string, Set<string>>()
  let trusted = false
  let generation = 0
  let bytes = 0
  // Plain integers, read when metrics are scraped: a hit costs an increment, not a metrics call.
  let hits = 0
  let misses = 0

  const remove = (handle: string) => {
    const entry = entries.get(handle)
    if (!entry) return
    entries.delete(handle)
    bytes -= entry.bytes
    const handles = byUser.get(entry.session.meta.sub)
    handles?.delete(handle)
    if (handles?.size === 0) byUser.delete(entry.session.meta.sub)
  }

  // A function, read afresh each time round the eviction loop: `remove` gives the bytes back.
  const overBudget = () => bytes > maxBytes || entries.size > maxEntries

  const clear = () => {
    entries.clear()
    byUser.clear()
    bytes = 0
    generation += 1
  }

  return {
    get trusted () { return trusted },
    get generation () { return generation },
    get (handle, key, at) {
      if (!trusted) return undefined
      const entry = entries.get(handle)
      if (!entry) {
        misses += 1
        return undefined
      }
      if (at - entry.cachedAt > options.ttlMs) {
        remove(handle)
        misses += 1
        return undefined
      }
      // The cookie's signature already vouches for its key; checking it again costs nothing. The
      // session manager hands back the very Buffer it cached for a cookie it verified before.
      const cachedKey = entry.session.cookie.key
      if (cachedKey !== key && (cachedKey.length !== key.length || !timingSafeEqual(cachedKey, key))) {
        misses += 1
        return undefined
      }
      entry.used = true
      hits += 1
      return entry.session
    },
    set (session, generationAtRead) {
      if (!trusted || generationAtRead !== generation) return
      remove(session.handle)
      const size = sizeOf(session)
      // One session larger than the whole budget is not kept: it would have to push out everything
      // else, and then itself.
      if (size > maxBytes || maxEntries < 1) return
      entries.set(session.handle, { session, cachedAt: now(), used: false, bytes: size })
      bytes += size
      const handles = byUser.get(session.meta.sub) ?? new Set<string>()
      handles.add(session.handle)
      byUser.set(session.meta.sub, handles)
      while (overBudget()) {
        const oldest = entries.entries().next().value
        if (oldest === undefined) break
        const [handle, entry] = oldest
        // The entry just stored is never the one to go, and fits the budget on its own. Every entry
        // is unmarked once it passes the front, so this ends within one round.
        if (entry.used || handle === session.handle) {
          entry.used = false
          entries.delete(handle)
          entries.set(handle, entry)
        } else {
          remove(handle)
        }
      }
    },
    invalidateSession (handle) {
      generation += 1
      remove(handle)
    },
    invalidateUser (sub) {
      generation += 1
      for (const handle of [...(byUser.get(sub) ?? [])]) remove(handle)
    },
    invalidateAll: clear,
    trust () {
      clear()
      trusted = true
    },
    distrust () {
      trusted = false
      clear()
    },
    stats: {
      get hits () { return hits },
      get misses () { return misses },
      get entries () { return entries.size },
      get bytes () { return bytes },
    },
  }
}
