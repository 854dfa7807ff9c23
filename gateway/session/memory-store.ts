/**
 * In-process session store: the zero-setup demo default. One process only:
 * a second gateway instance would not see these sessions, which is why the
 * gateway warns at start when it is in use.
 */
import type { RevocationReason, SessionStore, StoredSession } from './store.js'

interface Expiring<T> { value: T, expiresAt: number }

export function createMemoryStore (now: () => number = Date.now): SessionStore {
  const sessions = new Map<string, Expiring<StoredSession>>()
  const byUser = new Map<string, Set<string>>()
  const bySid = new Map<string, Set<string>>()
  const epochs = new Map<string, Expiring<number>>()
  const loginStates = new Map<string, Expiring<string>>()
  const handoffs = new Map<string, Expiring<string>>()
  const claimed = new Map<string, number>()
  const locks = new Map<string, Expiring<string>>()
  const disabled = new Set<string>()

  const live = <T>(map: Map<string, Expiring<T>>, key: string): T | undefined => {
    const entry = map.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= now()) {
      map.delete(key)
      return undefined
    }
    return entry.value
  }

  // Login states and native handoffs: kept for their TTL, readable once.
  const saveOnce = (map: Map<string, Expiring<string>>, key: string, value: string, ttlMs: number) => {
    map.set(key, { value, expiresAt: now() + ttlMs })
  }
  const takeOnce = (map: Map<string, Expiring<string>>, key: string): string | undefined => {
    const value = live(map, key)
    map.delete(key)
    return value
  }

  const unindex = (session: StoredSession) => {
    for (const [index, key] of [[byUser, session.meta.sub], [bySid, session.meta.sid]] as const) {
      if (key === undefined) continue
      const set = index.get(key)
      set?.delete(session.handle)
      if (set?.size === 0) index.delete(key)
    }
  }

  const index = (map: Map<string, Set<string>>, key: string, handle: string) => {
    const set = map.get(key) ?? new Set<string>()
    set.add(handle)
    map.set(key, set)
  }

  const removeSession = (handle: string): boolean => {
    const entry = sessions.get(handle)
    if (!entry) return false
    sessions.delete(handle)
    unindex(entry.value)
    return entry.expiresAt > now()
  }

  /** A live, not revoked session; expired ones are dropped on the way. */
  const active = (handle: string): StoredSession | undefined => {
    const session = live(sessions, handle)
    if (!session) removeSession(handle)
    return session && !session.revoked ? session : undefined
  }

  const revoke = (handle: string, reason: RevocationReason): boolean => {
    const session = active(handle)
    if (!session) return false
    session.revoked = reason
    unindex(session)
    return true
  }

  // Expired entries are dropped when read; the sweep bounds memory for entries never read again.
  const sweep = setInterval(() => {
    const t = now()
    for (const [handle, entry] of sessions) if (entry.expiresAt <= t) removeSession(handle)
    for (const map of [loginStates, handoffs, locks, epochs] as Array<Map<string, Expiring<unknown>>>) {
      for (const [key, entry] of map) if (entry.expiresAt <= t) map.delete(key)
    }
    for (const [key, expiresAt] of claimed) if (expiresAt <= t) claimed.delete(key)
  }, 30_000)
  sweep.unref()

  const copy = (s: StoredSession): StoredSession => ({ ...s, meta: { ...s.meta } })

  return {
    kind: 'memory',
    async create (session, ttlMs) {
      removeSession(session.handle)
      sessions.set(session.handle, { value: copy({ ...session, version: 1 }), expiresAt: now() + ttlMs })
      index(byUser, session.meta.sub, session.handle)
      if (session.meta.sid !== undefined) index(bySid, session.meta.sid, session.handle)
      // As the Redis store: the epoch as it stands once the session is indexed (one process, so
      // no bump can fall between the two).
      return live(epochs, session.meta.sub) ?? 0
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
      const current = active(handle)
      if (!current || current.version !== expectedVersion) return false
      sessions.set(handle, {
        value: { ...current, meta: { ...next.meta }, sealed: next.sealed, version: current.version + 1 },
        expiresAt: now() + ttlMs,
      })
      return true
    },
    async touch (handle, lastSeenAt, ttlMs) {
      const entry = sessions.get(handle)
      if (!entry || entry.expiresAt <= now() || entry.value.revoked) return false
      entry.value.lastSeenAt = lastSeenAt
      entry.expiresAt = now() + ttlMs
      return true
    },
    async destroy (handle) {
      return removeSession(handle)
    },
    async revoke (handle, reason) {
      return revoke(handle, reason)
    },
    async listByUser (sub) {
      return [...(byUser.get(sub) ?? [])].map(active).filter((s): s is StoredSession => s !== undefined).map(copy)
    },
    async listBySid (sid) {
      return [...(bySid.get(sid) ?? [])].filter(handle => active(handle) !== undefined)
    },
    async requestRefresh (handle) {
      const session = active(handle)
      if (!session) return false
      session.refreshRequests = (session.refreshRequests ?? 0) + 1
      return true
    },
    async forgetAcr (handle) {
      const session = active(handle)
      if (!session) return false
      session.acrForgotten = true
      return true
    },
    async isDisabled (sub) {
      return disabled.has(sub)
    },
    async setDisabled (sub, isDisabled) {
      if (isDisabled) disabled.add(sub)
      else disabled.delete(sub)
    },
    async revokeByUser (sub, reason) {
      return [...(byUser.get(sub) ?? [])].filter(handle => revoke(handle, reason))
    },
    async revokeAll (reason) {
      return [...sessions.keys()].filter(handle => revoke(handle, reason)).length
    },
    async destroyAll () {
      const count = [...sessions.values()].filter(e => e.expiresAt > now()).length
      sessions.clear()
      byUser.clear()
      bySid.clear()
      return count
    },
    async userEpoch (sub) {
      return live(epochs, sub) ?? 0
    },
    async bumpUserEpoch (sub, ttlMs) {
      const next = (live(epochs, sub) ?? 0) + 1
      epochs.set(sub, { value: next, expiresAt: now() + ttlMs })
      return next
    },
    async saveLoginState (state, value, ttlMs) {
      saveOnce(loginStates, state, value, ttlMs)
    },
    async takeLoginState (state) {
      return takeOnce(loginStates, state)
    },
    async saveHandoff (id, value, ttlMs) {
      saveOnce(handoffs, id, value, ttlMs)
    },
    async takeHandoff (id) {
      return takeOnce(handoffs, id)
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
    async countSessions () {
      return [...sessions.values()].filter(e => e.expiresAt > now()).length
    },
    async ping () {},
    async close () {
      clearInterval(sweep)
    },
  }
}
