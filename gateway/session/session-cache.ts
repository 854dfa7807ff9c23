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
import type { ActiveSession } from './active-session.js'

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
}

export interface SessionCacheOptions {
  maxEntries: number
  /** A safety net only: invalidation is what keeps entries correct. */
  ttlMs: number
  now?: () => number
}

/** `used`: read since it was stored or last given a second chance. */
interface Entry { session: ActiveSession, cachedAt: number, used: boolean }

export function createSessionCache (options: SessionCacheOptions): SessionCache {
  const now = options.now ?? Date.now
  // A Map iterates in insertion order, oldest first. Eviction gives a used entry a second chance
  // (it moves to the back, unmarked) instead of re-inserting it on every hit: a hit is then one
  // field write, which matters on the path every API call takes.
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
    get (handle, key, at) {
      if (!trusted) return undefined
      const entry = entries.get(handle)
      if (!entry) return undefined
      if (at - entry.cachedAt > options.ttlMs) {
        remove(handle)
        return undefined
      }
      // The cookie's signature already vouches for its key; checking it again costs nothing. The
      // session manager hands back the very Buffer it cached for a cookie it verified before.
      const cachedKey = entry.session.cookie.key
      if (cachedKey !== key && (cachedKey.length !== key.length || !timingSafeEqual(cachedKey, key))) return undefined
      entry.used = true
      return entry.session
    },
    set (session, generationAtRead) {
      if (!trusted || generationAtRead !== generation || options.maxEntries <= 0) return
      remove(session.handle)
      entries.set(session.handle, { session, cachedAt: now(), used: false })
      const handles = byUser.get(session.meta.sub) ?? new Set<string>()
      handles.add(session.handle)
      byUser.set(session.meta.sub, handles)
      while (entries.size > options.maxEntries) {
        const oldest = entries.entries().next().value
        if (oldest === undefined) break
        const [handle, entry] = oldest
        // The entry just stored is never the one to go. Every entry is unmarked once it passes
        // the front, so this ends within one round.
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
  }
}
