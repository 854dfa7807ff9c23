/**
 * The session manager on the memory store with a fake clock: what a cookie
 * loads, when a session ends (idle, absolute, revoked, epoch), how activity and
 * token writes are recorded, how secrets rotate, and what the in-process cache
 * may answer without I/O. (The same store contract on Redis:
 * test/integration/session-store.contract.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionCache, type SessionCache } from '../../gateway/session/session-cache.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { decodeSessionCookie, encodeSessionCookie, newSessionCookieValue } from '../../gateway/session/session-cookie.js'
import { createSessionManager, type SessionManager, type SessionManagerOptions, type SessionSecrets } from '../../gateway/session/sessions.js'
import type { RevocationReason, SessionMeta, SessionStore } from '../../gateway/session/store.js'
import { createRevocation } from '../../gateway/session/revocation.js'
import { fakeClock, type FakeClock } from '../helpers/fake-clock.js'
import { testRevocation } from '../helpers/revocation.js'
import { sealFormat1 } from '../helpers/format-1-seal.js'

const SECRET = 'unit-test-session-secret-0123456789-abcdefgh'
const NEW_SECRET = 'unit-test-session-secret-rotated-0123456789'
const SECOND = 1000
const MINUTE = 60 * SECOND

const ALICE = { sub: 'alice', sid: 'idp-session-1', ip: '127.0.0.1', userAgent: 'unit' }
const TOKENS = { accessToken: 'access-1', refreshToken: 'refresh-1', accessTokenExpiresAt: Date.UTC(2031, 0, 1), claims: { name: 'Alice' }, roles: ['user'] }

interface SeenRevocation { secrets: SessionSecrets, meta: SessionMeta, reason: RevocationReason }

interface Setup {
  clock: FakeClock
  store: SessionStore
  sessions: SessionManager
  /** Every call of `onRevokedSessionSeen`. */
  seen: SeenRevocation[]
  /** Another instance's manager over the same store and secrets (its own cookie memory and cache). */
  otherInstance (): SessionManager
}

interface SetupOptions {
  idleSeconds?: number
  absoluteSeconds?: number
  secrets?: string[]
  /**
   * The store's clock. By default it stands still: a store whose TTL lags keeps expired records,
   * and the manager must refuse (and destroy) them on its own clock.
   */
  storeNow?: () => number
  store?: SessionStore
  cache?: SessionCache
  clock?: FakeClock
}

function setup (options: SetupOptions = {}): Setup {
  const clock = options.clock ?? fakeClock()
  const storeNow = options.storeNow ?? fakeClock().now
  const store = options.store ?? createMemoryStore(storeNow)
  const seen: SeenRevocation[] = []
  const managerOptions = (): SessionManagerOptions => ({
    store,
    crypto: createSessionCrypto(options.secrets ?? [SECRET]),
    idleTimeoutSeconds: options.idleSeconds ?? 1800,
    absoluteTimeoutSeconds: options.absoluteSeconds ?? 43_200,
    onRevokedSessionSeen: async (secrets, meta, reason) => { seen.push({ secrets, meta, reason }) },
    now: clock.now,
  })
  return {
    clock,
    store,
    sessions: createSessionManager({ ...managerOptions(), ...(options.cache ? { cache: options.cache } : {}) }),
    seen,
    otherInstance: () => createSessionManager(managerOptions()),
  }
}

describe('session manager: create, then load from the cookie', () => {
  it('loads the session the cookie names, with its identity, tokens and a fresh CSRF token', async () => {
    const { sessions, store } = setup()
    const created = await sessions.create(ALICE, TOKENS)
    const loaded = await sessions.load(created.cookieValue)
    expect(loaded).toMatchObject({ handle: created.session.handle, version: 1, meta: { sub: 'alice', sid: 'idp-session-1' } })
    expect(loaded?.secrets).toEqual({ ...TOKENS, csrfToken: created.session.secrets.csrfToken })
    expect(created.session.secrets.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
    // At rest the tokens are sealed, and the store knows the session only by a handle that is not the cookie.
    const stored = await store.get(created.session.handle)
    expect(stored!.sealed.includes('access-1')).toBe(false)
    expect(created.cookieValue).not.toContain(created.session.handle)
  })

  it('keeps the first 256 characters of a User-Agent: a client cannot make its session record as large as it likes', async () => {
    const { sessions, store } = setup()
    const userAgent = `Mozilla/5.0 ${'x'.repeat(5000)}`
    const created = await sessions.create({ ...ALICE, userAgent }, TOKENS)
    expect((await store.get(created.session.handle))!.meta.userAgent).toBe(userAgent.slice(0, 256))
  })

  it('two sessions of one user are two sessions: each cookie loads its own', async () => {
    const { sessions } = setup()
    const first = await sessions.create(ALICE, TOKENS)
    const second = await sessions.create(ALICE, { ...TOKENS, accessToken: 'access-other' })
    expect((await sessions.load(first.cookieValue))?.secrets.accessToken).toBe('access-1')
    expect((await sessions.load(second.cookieValue))?.secrets.accessToken).toBe('access-other')
  })

  const tamperings: Record<string, (cookie: string) => string | undefined> = {
    'truncated by one character': cookie => cookie.slice(0, -1),
    'cut before its signature': cookie => cookie.slice(0, cookie.lastIndexOf('.')),
    'with its signature altered': cookie => cookie.slice(0, -1) + (cookie.endsWith('A') ? 'B' : 'A'),
    'with its id altered': cookie => (cookie.startsWith('A') ? 'B' : 'A') + cookie.slice(1),
    'with a second value appended': cookie => `${cookie}.${cookie}`,
    empty: () => '',
    absent: () => undefined,
  }

  it.each(Object.entries(tamperings))('a cookie %s loads nothing', async (_name, tamper) => {
    const { sessions } = setup()
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    expect(await sessions.load(tamper(cookieValue))).toBeUndefined()
  })

  it('a well-formed cookie signed under another secret loads nothing, even if its session exists', async () => {
    const shared = createMemoryStore()
    const foreign = setup({ secrets: ['another-deployment-secret-0123456789-abcdef'], store: shared })
    const ours = setup({ store: shared })
    const { cookieValue } = await foreign.sessions.create(ALICE, TOKENS)
    expect(await ours.sessions.load(cookieValue)).toBeUndefined()
  })
})

describe('session manager: idle and absolute timeouts', () => {
  it('a session idle for its whole idle window is gone, and its record destroyed', async () => {
    const { sessions, store, clock } = setup({ idleSeconds: 300 })
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    clock.advance(300 * SECOND - 1)
    expect(await sessions.load(cookieValue)).toBeDefined()
    clock.advance(1)
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(await store.get(session.handle)).toBeUndefined()
  })

  it('recorded activity moves the idle expiry', async () => {
    const { sessions, clock } = setup({ idleSeconds: 300 })
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    clock.advance(200 * SECOND)
    await sessions.touch((await sessions.load(cookieValue))!)
    clock.advance(200 * SECOND)
    expect((await sessions.load(cookieValue))?.idleExpiresAt).toBe(clock.now() + 100 * SECOND)
  })

  it('a session in use is gone at its absolute expiry, and its record destroyed', async () => {
    const { sessions, store, clock } = setup({ idleSeconds: 1800, absoluteSeconds: 3600 })
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    for (let minute = 20; minute < 60; minute += 20) {
      clock.advance(20 * MINUTE)
      const active = await sessions.load(cookieValue)
      expect(active).toBeDefined()
      await sessions.touch(active!)
    }
    clock.advance(20 * MINUTE)
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(await store.get(session.handle)).toBeUndefined()
  })
})

describe('session manager: touch', () => {
  it.each([
    { idleSeconds: 300, intervalMs: 30 * SECOND, window: 'a tenth of a 5-minute idle window' },
    { idleSeconds: 1800, intervalMs: MINUTE, window: 'at most a minute, for a 30-minute idle window' },
  ])('records activity at most every $window', async ({ idleSeconds, intervalMs }) => {
    const { sessions, store, clock } = setup({ idleSeconds })
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    const createdAt = clock.now()
    clock.advance(intervalMs - 1)
    expect(await sessions.touch((await sessions.load(cookieValue))!)).toEqual({ outcome: 'not_due' })
    expect((await store.get(session.handle))?.lastSeenAt).toBe(createdAt)
    clock.advance(1)
    expect(await sessions.touch((await sessions.load(cookieValue))!)).toEqual({ outcome: 'recorded', maxAgeSeconds: idleSeconds })
    expect((await store.get(session.handle))?.lastSeenAt).toBe(clock.now())
  })

  it('returns a cookie Max-Age that never reaches beyond the session\'s absolute expiry', async () => {
    const { sessions, clock } = setup({ idleSeconds: 1800, absoluteSeconds: 3600 })
    const created = await sessions.create(ALICE, TOKENS)
    expect(created.maxAgeSeconds).toBe(1800)
    clock.advance(25 * MINUTE)
    expect(await sessions.touch((await sessions.load(created.cookieValue))!)).toEqual({ outcome: 'recorded', maxAgeSeconds: 1800 })
    clock.advance(25 * MINUTE)
    const active = (await sessions.load(created.cookieValue))!
    expect(await sessions.touch(active)).toEqual({ outcome: 'recorded', maxAgeSeconds: 600 })
    expect(active.idleExpiresAt).toBe(active.meta.absoluteExpiresAt)
  })

  it('sends one touch for the requests in flight on one session, and lets the next request retry when the store failed', async () => {
    const clock = fakeClock()
    const counted = countingStore(createMemoryStore(clock.now))
    const { sessions } = setup({ idleSeconds: 300, store: counted.store, clock })
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    clock.advance(30 * SECOND)
    const loaded = (await sessions.load(cookieValue))!
    counted.calls.length = 0
    const touches = await Promise.all([sessions.touch(loaded), sessions.touch(loaded), sessions.touch(loaded)])
    expect(touches).toEqual([{ outcome: 'recorded', maxAgeSeconds: 300 }, { outcome: 'not_due' }, { outcome: 'not_due' }])
    expect(counted.calls.filter(call => call === 'touch')).toHaveLength(1)

    clock.advance(30 * SECOND)
    const failing = { ...loaded, lastSeenAt: loaded.lastSeenAt }
    const original = counted.store.touch
    counted.store.touch = () => Promise.reject(new Error('store down'))
    await expect(sessions.touch(failing)).rejects.toThrow('store down')
    counted.store.touch = original
    expect(sessions.touchDue(failing)).toBe(true)
  })

  it('ends a session revoked after this request read it: its due touch finds no live session to record', async () => {
    const { sessions, store, clock } = setup({ idleSeconds: 300 })
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    clock.advance(30 * SECOND)
    const loaded = (await sessions.load(cookieValue))!
    const seenBefore = loaded.lastSeenAt
    await store.revoke(session.handle, 'operator')
    expect(await sessions.touch(loaded)).toEqual({ outcome: 'ended' })
    expect((await store.get(session.handle))?.lastSeenAt).toBe(seenBefore)
  })
})

describe('session manager: saveSecrets is compare-and-set', () => {
  it('of two writers that read the same version, the first wins and the stale one gets undefined', async () => {
    const { sessions } = setup()
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    const [first, stale] = [(await sessions.load(cookieValue))!, (await sessions.load(cookieValue))!]
    const saved = await sessions.saveSecrets(first, { ...first.secrets, accessToken: 'access-first' })
    expect(saved?.version).toBe(2)
    expect(await sessions.saveSecrets(stale, { ...stale.secrets, accessToken: 'access-stale' })).toBeUndefined()
    expect((await sessions.load(cookieValue))?.secrets.accessToken).toBe('access-first')
  })

  it('a writer that re-read the new version may write again', async () => {
    const { sessions } = setup()
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    await sessions.saveSecrets(session, { ...session.secrets, accessToken: 'access-2' })
    const current = (await sessions.reload(session))!
    expect((await sessions.saveSecrets(current, { ...current.secrets, accessToken: 'access-3' }))?.version).toBe(3)
    expect((await sessions.load(cookieValue))?.secrets.accessToken).toBe('access-3')
  })
})

describe('session manager: a revoked session (tombstone)', () => {
  it('loads as undefined, and its browser\'s return hands its tokens to onRevokedSessionSeen exactly once', async () => {
    const { sessions, store, seen, otherInstance } = setup()
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    expect(await store.revoke(session.handle, 'operator')).toBe(true)
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(await sessions.load(cookieValue)).toBeUndefined()
    // Another instance seeing the same browser does not revoke the tokens a second time.
    expect(await otherInstance().load(cookieValue)).toBeUndefined()
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ reason: 'operator', meta: { sub: 'alice' }, secrets: { refreshToken: 'refresh-1' } })
    // The tombstone stays, so the next login can force re-authentication.
    expect(await sessions.revocationOf(cookieValue)).toBe('operator')
  })

  it('revoked from its own request: the tokens are handed over at once, and once', async () => {
    const { sessions, seen } = setup()
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    await sessions.revoke(session, 'binding')
    expect(seen.map(s => s.reason)).toEqual(['binding'])
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(seen).toHaveLength(1)
  })
})

describe('session manager: the user\'s epoch', () => {
  it('"log out everywhere" ends every session created before it (tombstones), not those created after, nor other users\'', async () => {
    const { sessions, store, seen } = setup()
    const revocation = testRevocation(store, sessions)
    const before = [await sessions.create(ALICE, TOKENS), await sessions.create(ALICE, TOKENS)]
    const bob = await sessions.create({ ...ALICE, sub: 'bob', sid: 'idp-session-2' }, TOKENS)
    expect(await revocation.revoke({ sub: 'alice', reason: 'operator' })).toBe(2)
    const after = await sessions.create(ALICE, { ...TOKENS, accessToken: 'access-after' })

    for (const { cookieValue, session } of before) {
      expect(await sessions.load(cookieValue)).toBeUndefined()
      expect((await store.get(session.handle))?.revoked).toBe('operator')
    }
    expect(seen.map(s => s.reason)).toEqual(['operator', 'operator'])
    expect((await sessions.load(after.cookieValue))?.secrets.accessToken).toBe('access-after')
    expect(await sessions.load(bob.cookieValue)).toBeDefined()
  })

  it('a request that misses the cache asks the store once (its record), never for the user\'s epoch', async () => {
    const counted = countingStore(createMemoryStore())
    const { sessions, otherInstance } = setup({ store: counted.store })
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    const other = otherInstance()
    for (const manager of [sessions, other, other]) {
      counted.calls.length = 0
      expect(await manager.load(cookieValue)).toBeDefined()
      expect(counted.calls).toEqual(['get'])
    }
  })

  it('a session the user\'s index lost is ended at its first activity touch after "log out everywhere" (tombstone "epoch", tokens handed over once)', async () => {
    const { sessions, store, seen, clock } = setup({ idleSeconds: 300 })
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    // The index answers nothing, as if Redis had lost the session's entry in it.
    const lostIndex = createRevocation({
      records: store,
      index: { ...store, revokeByUser: async () => [], bumpUserEpoch: store.bumpUserEpoch },
      revokeOwn: (s, reason) => sessions.revoke(s, reason),
      forgetCookie: (raw, replacedBy) => sessions.forget(raw, replacedBy),
      revokeRefreshToken: async () => {},
      audit: () => {},
      epochTtlMs: 86_400_000,
    })
    await lostIndex.revoke({ sub: 'alice', reason: 'operator' })
    clock.advance(30 * SECOND)
    const loaded = (await sessions.load(cookieValue))!
    expect(sessions.touchDue(loaded)).toBe(true)
    expect(await sessions.touch(loaded)).toEqual({ outcome: 'ended' })
    expect((await store.get(session.handle))?.revoked).toBe('epoch')
    expect(seen.map(s => s.reason)).toEqual(['epoch'])
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(seen).toHaveLength(1)
  })

  it('a login whose session was indexed after the user\'s epoch moved past it ends at once (tombstone "epoch", tokens revoked)', async () => {
    const base = createMemoryStore()
    // The bump lands between the epoch the login read and its record being stored and indexed.
    const racing: SessionStore = {
      ...base,
      create: async (session, ttlMs) => {
        await base.bumpUserEpoch(session.meta.sub, 86_400_000)
        return base.create(session, ttlMs)
      },
    }
    const { sessions, seen } = setup({ store: racing })
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    expect((await base.get(session.handle))?.revoked).toBe('epoch')
    expect(seen.map(s => s.reason)).toEqual(['epoch'])
    expect(await sessions.load(cookieValue)).toBeUndefined()
  })
})

describe('session manager: secret rotation', () => {
  it('a session sealed under the old secret loads under [new, old] and is re-sealed under the new one', async () => {
    const shared = createMemoryStore()
    const before = setup({ secrets: [SECRET], store: shared })
    const after = setup({ secrets: [NEW_SECRET, SECRET], store: shared })
    const { cookieValue, session } = await before.sessions.create(ALICE, TOKENS)
    const newOnly = createSessionCrypto([NEW_SECRET])
    expect(newOnly.isStale((await shared.get(session.handle))!.sealed)).toBe(true)

    const loaded = await after.sessions.load(cookieValue)
    expect(loaded?.secrets.accessToken).toBe('access-1')
    const resealed = (await shared.get(session.handle))!
    expect(resealed.version).toBe(2)
    expect(newOnly.isStale(resealed.sealed)).toBe(false)
    // The old secret can now be retired: the new one alone opens the record with the cookie's key.
    const { key } = decodeSessionCookie(cookieValue, createSessionCrypto([NEW_SECRET, SECRET]))!
    expect(JSON.parse(newOnly.unseal(resealed.sealed, key, session.handle))).toMatchObject({ accessToken: 'access-1' })

    // Re-sealed once: the next load writes nothing.
    await after.sessions.load(cookieValue)
    expect((await shared.get(session.handle))?.version).toBe(2)
  })
})

describe('session manager: sessions sealed by an older version', () => {
  it('a session in sealed format 1, ID token and all, loads as it was and is re-sealed once in the current format, without the ID token', async () => {
    const { sessions, store, clock } = setup()
    // As a gateway before format 2 stored it at login.
    const cookie = newSessionCookieValue()
    const legacy = { ...TOKENS, idToken: 'id-token-1', csrfToken: 'csrf-1' }
    const meta = { ...ALICE, createdAt: clock.now(), absoluteExpiresAt: clock.now() + 12 * 60 * MINUTE, epoch: 0 }
    await store.create({ handle: cookie.handle, meta, sealed: Buffer.from(sealFormat1(SECRET, JSON.stringify(legacy), cookie.key, cookie.handle)), lastSeenAt: clock.now() }, 60 * MINUTE)
    const cookieValue = encodeSessionCookie(cookie, createSessionCrypto([SECRET]))

    const loaded = await sessions.load(cookieValue)
    const { idToken: _dropped, ...kept } = legacy
    expect(loaded?.secrets).toEqual(kept)
    const resealed = (await store.get(cookie.handle))!
    expect(resealed.version).toBe(2)
    expect(resealed.sealed[0]).toBe(2)
    const crypto = createSessionCrypto([SECRET])
    expect(crypto.isStale(resealed.sealed)).toBe(false)
    expect(JSON.parse(crypto.unseal(resealed.sealed, cookie.key, cookie.handle))).toEqual(kept)

    // Re-sealed once: the next load writes nothing.
    await setup({ store }).sessions.load(cookieValue)
    expect((await store.get(cookie.handle))?.version).toBe(2)
  })
})

/** The store, with a log of the methods called on it: "no I/O" means nothing in the log. */
function countingStore (store: SessionStore): { store: SessionStore, calls: string[] } {
  const calls: string[] = []
  const counted = new Proxy(store, {
    get (target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push(String(property))
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { store: counted, calls }
}

describe('session manager: the session cache', () => {
  function cachedSetup (idleSeconds = 300) {
    const clock = fakeClock()
    const cache = createSessionCache({ maxEntries: 100, ttlMs: MINUTE, now: clock.now })
    cache.trust()
    const counted = countingStore(createMemoryStore(clock.now))
    return { ...setup({ idleSeconds, store: counted.store, cache, clock }), cache, calls: counted.calls }
  }

  it('serves a session read once from the cache, without asking the store', async () => {
    const { sessions, calls } = cachedSetup()
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    const first = await sessions.load(cookieValue)
    calls.length = 0
    expect(await sessions.load(cookieValue)).toBe(first)
    expect(calls).toEqual([])
  })

  it('answers without a promise (no I/O) for a cached session, and says when its activity is due to be recorded', async () => {
    const { sessions, calls, clock } = cachedSetup(300)
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    // Not cached yet: the store is read.
    const first = sessions.load(cookieValue)
    expect(first).toBeInstanceOf(Promise)
    const loaded = (await first)!
    calls.length = 0
    clock.advance(30 * SECOND - 1)
    expect(sessions.load(cookieValue)).toBe(loaded)
    expect(sessions.touchDue(loaded)).toBe(false)
    clock.advance(1)
    // A tenth of the idle window has passed: the caller records activity (touch) before answering.
    expect(sessions.touchDue(loaded)).toBe(true)
    expect(calls).toEqual([])
  })

  it('a distrusted cache (invalidation channel down) serves nothing: every load asks the store', async () => {
    const { sessions, calls, cache } = cachedSetup()
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    await sessions.load(cookieValue)
    cache.distrust()
    calls.length = 0
    const loading = sessions.load(cookieValue)
    expect(loading).toBeInstanceOf(Promise)
    expect(await loading).toBeDefined()
    expect(calls).toContain('get')
  })

  it('an invalidated session is read from the store again, and a revocation is seen', async () => {
    const { sessions, store, cache } = cachedSetup()
    const { cookieValue, session } = await sessions.create(ALICE, TOKENS)
    await sessions.load(cookieValue)
    await store.revoke(session.handle, 'operator')
    cache.invalidateSession(session.handle)
    const loading = sessions.load(cookieValue)
    expect(loading).toBeInstanceOf(Promise)
    expect(await loading).toBeUndefined()
  })
})
