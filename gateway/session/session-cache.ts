/**
 * An in-process cache of opened sessions, so the hot path (a signed-in user's
 * API call) costs no Redis round trip and no decryption.
 *
 * It is only trusted while the invalidation channel is up: every write that
 * changes a session's validity or tokens is announced on it, and any message
 * — or the loss of the channel — evicts what it names before the next read.
 * A read that raced with an invalidation is not cached (the generation check),
 * so an entry can never be older than the last announcement.
 */
import { timingSafeEqual } from 'node:crypto'
import type { ActiveSession } from './sessions.js'

export interface SessionCache {
  /** True while the invalidation channel is up; otherwise nothing is served or stored. */
  readonly trusted: boolean
  /** Changes with every invalidation; a read started at an older generation is not cached. */
  readonly generation: number
  get (handle: string, key: Buffer): ActiveSession | undefined
  set (session: ActiveSession, generationAtRead: number): void
  invalidateSession (handle: string): void
  invalidateUser (sub: string): void
  invalidateAll (): void
  /** The channel is up (again): start trusting, from empty. */
  trust (): void
  /** The channel is down: drop everything and stop trusting until `trust()`. */
  distrust (): void
}

export interface SessionCacheOptions {
  maxEntries: number
  /** A safety net only: invalidation is what keeps entries correct. */
  ttlMs: number
  now?: () => number
}

interface Entry { session: ActiveSession, cachedAt: number }

export function createSessionCache (options: SessionCacheOptions): SessionCache {
  const now = options.now ?? Date.now
  // A Map iterates in insertion order: re-inserting on hit makes the first key the least recently used.
  const entries = new Map<string, Entry>()
  const byUser = new Map<string, Set<string>>()
  let trusted = false
  let generation = 0

  const remove = (handle: string) => {
    const entry = entries.get(handle)
    if (!entry) return
    entries.delete(handle)
    const handles = byUser.get(entry.session.meta.sub)
    handles?.delete(handle)
    if (handles?.size === 0) byUser.delete(entry.session.meta.sub)
  }

  const clear = () => {
    entries.clear()
    byUser.clear()
    generation += 1
  }

  return {
    get trusted () { return trusted },
    get generation () { return generation },
    get (handle, key) {
      if (!trusted) return undefined
      const entry = entries.get(handle)
      if (!entry) return undefined
      if (now() - entry.cachedAt > options.ttlMs) {
        remove(handle)
        return undefined
      }
      // The cookie's signature already vouches for its key; checking it again costs nothing. The
      // session manager hands back the very Buffer it cached for a cookie it verified before.
      const cachedKey = entry.session.cookie.key
      if (cachedKey !== key && (cachedKey.length !== key.length || !timingSafeEqual(cachedKey, key))) return undefined
      entries.delete(handle)
      entries.set(handle, entry)
      return entry.session
    },
    set (session, generationAtRead) {
      if (!trusted || generationAtRead !== generation || options.maxEntries <= 0) return
      remove(session.handle)
      entries.set(session.handle, { session, cachedAt: now() })
      const handles = byUser.get(session.meta.sub) ?? new Set<string>()
      handles.add(session.handle)
      byUser.set(session.meta.sub, handles)
      while (entries.size > options.maxEntries) {
        const oldest = entries.keys().next().value
        if (oldest === undefined) break
        remove(oldest)
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
  }
}
