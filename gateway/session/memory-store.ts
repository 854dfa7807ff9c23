/**
 * In-process session store: the zero-setup demo default. One process only:
 * a second gateway instance would not see these sessions, which is why the
 * gateway warns at start when it is in use.
 */
import type { SessionStore, StoredSession } from './store.js'

interface Expiring<T> { value: T, expiresAt: number }

export function createMemoryStore (now: () => number = Date.now): SessionStore {
  const sessions = new Map<string, Expiring<StoredSession>>()
  const byUser = new Map<string, Set<string>>()
  const loginStates = new Map<string, Expiring<string>>()
  const claimed = new Map<string, number>()
  const locks = new Map<string, Expiring<string>>()

  const live = <T>(map: Map<string, Expiring<T>>, key: string): T | undefined => {
    const entry = map.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= now()) {
      map.delete(key)
      return undefined
    }
    return entry.value
  }

  const removeSession = (handle: string): boolean => {
    const entry = sessions.get(handle)
    if (!entry) return false
    sessions.delete(handle)
    const index = byUser.get(entry.value.meta.sub)
    index?.delete(handle)
    if (index?.size === 0) byUser.delete(entry.value.meta.sub)
    return entry.expiresAt > now()
  }

  // Expired entries are dropped when read; the sweep bounds memory for entries never read again.
  const sweep = setInterval(() => {
    const t = now()
    for (const [handle, entry] of sessions) if (entry.expiresAt <= t) removeSession(handle)
    for (const [key, entry] of loginStates) if (entry.expiresAt <= t) loginStates.delete(key)
    for (const [key, expiresAt] of claimed) if (expiresAt <= t) claimed.delete(key)
    for (const [key, entry] of locks) if (entry.expiresAt <= t) locks.delete(key)
  }, 30_000)
  sweep.unref()

  const copy = (s: StoredSession): StoredSession => ({ ...s, meta: { ...s.meta } })

  return {
    kind: 'memory',
    async create (session, ttlMs) {
      removeSession(session.handle)
      sessions.set(session.handle, { value: { ...copy({ ...session, version: 1 }) }, expiresAt: now() + ttlMs })
      const index = byUser.get(session.meta.sub) ?? new Set<string>()
      index.add(session.handle)
      byUser.set(session.meta.sub, index)
    },
    async get (handle) {
      const session = live(sessions, handle)
      if (!session) {
        removeSession(handle)
        return undefined
      }
      return copy(session)
    },
    async replace (handle, expectedVersion, next, ttlMs) {
      const current = live(sessions, handle)
      if (!current || current.version !== expectedVersion) return false
      sessions.set(handle, {
        value: { ...current, meta: { ...next.meta }, sealed: next.sealed, version: current.version + 1 },
        expiresAt: now() + ttlMs,
      })
      return true
    },
    async touch (handle, lastSeenAt, ttlMs) {
      const entry = sessions.get(handle)
      if (!entry || entry.expiresAt <= now()) return
      entry.value.lastSeenAt = lastSeenAt
      entry.expiresAt = now() + ttlMs
    },
    async destroy (handle) {
      return removeSession(handle)
    },
    async listByUser (sub) {
      const result: StoredSession[] = []
      for (const handle of [...(byUser.get(sub) ?? [])]) {
        const session = live(sessions, handle)
        if (session) result.push(copy(session))
        else removeSession(handle)
      }
      return result
    },
    async destroyByUser (sub) {
      const handles = [...(byUser.get(sub) ?? [])].filter(h => live(sessions, h) !== undefined)
      for (const handle of byUser.get(sub) ?? []) removeSession(handle)
      return handles
    },
    async destroyAll () {
      const count = [...sessions.values()].filter(e => e.expiresAt > now()).length
      sessions.clear()
      byUser.clear()
      return count
    },
    async saveLoginState (state, value, ttlMs) {
      loginStates.set(state, { value, expiresAt: now() + ttlMs })
    },
    async takeLoginState (state) {
      const value = live(loginStates, state)
      loginStates.delete(state)
      return value
    },
    async claimOnce (key, ttlMs) {
      const expiresAt = claimed.get(key)
      if (expiresAt !== undefined && expiresAt > now()) return false
      claimed.set(key, now() + ttlMs)
      return true
    },
    async acquireLock (name, owner, ttlMs) {
      if (live(locks, name) !== undefined) return false
      locks.set(name, { value: owner, expiresAt: now() + ttlMs })
      return true
    },
    async renewLock (name, owner, ttlMs) {
      if (live(locks, name) !== owner) return false
      locks.set(name, { value: owner, expiresAt: now() + ttlMs })
      return true
    },
    async releaseLock (name, owner) {
      if (live(locks, name) === owner) locks.delete(name)
    },
    async ping () {},
    async close () {
      clearInterval(sweep)
    },
  }
}
