/**
 * The token refresher on the memory store with a scripted OIDC client and a fake clock:
 * when it refreshes, what a refresh stores, that one session makes one token call however
 * many requests (on however many instances) notice the expiry, and what an outage or a
 * missing refresh token does.
 *
 * Then its decision when a session changes while the IdP is refreshing it: a refusal is theft
 * only if the session still holds the refused token as its newest; a token granted for an
 * ended session is revoked.
 * (The same against the real IdP and Redis: test/integration/token-refresh.test.ts and
 * test/integration/refresh-revocation-race.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { IdpUnavailable, SessionExpired } from '../../gateway/errors.js'
import { createTokenRefresher, type RefreshFailure, type TokenRefresherOptions } from '../../gateway/auth/token-refresher.js'
import { OidcRejectedError, OidcResponseInvalidError, type OidcClient, type TokenResult } from '../../gateway/auth/oidc-client.js'
import { createChangeWaiters, type ChangeWaiters } from '../../gateway/session/change-waiters.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createSessionManager, type ActiveSession, type SessionManager, type SessionSecrets } from '../../gateway/session/sessions.js'
import type { SessionStore } from '../../gateway/session/store.js'
import { fakeClock, type FakeClock } from '../helpers/fake-clock.js'
import { testRevocation } from '../helpers/revocation.js'
import { scriptedOidc } from '../helpers/scripted-oidc.js'

const HOUR_MS = 3_600_000
const MINUTE_MS = 60_000
const SECRET = 'unit-test-session-secret-0123456789-abcdefgh'
const SKEW_SECONDS = 30
const ALICE = { sub: 'alice', sid: 'idp-session-1', ip: '127.0.0.1', userAgent: 'unit' }

/** A promise a test settles when it decides: the IdP's answer, or news that something happened. */
function deferred<T = void> () {
  let settle!: (value: T) => void
  const promise = new Promise<T>(resolve => { settle = resolve })
  return { promise, resolve: settle }
}

/** The IdP's token endpoint as a test scripts it: the refresh tokens presented, in order, and one answer per call. */
function tokenEndpoint (answer: (call: number) => Promise<TokenResult>, more: Partial<OidcClient> = {}) {
  const presented: string[] = []
  const oidc = scriptedOidc({
    ...more,
    refresh: async (refreshToken) => {
      presented.push(refreshToken)
      return answer(presented.length)
    },
  })
  return { oidc, presented }
}

/** A rotating IdP's answer: new tokens, and an ID token whose claims now give alice the admin role. */
const rotated = (clock: FakeClock): TokenResult => ({
  accessToken: 'access-2',
  refreshToken: 'refresh-2',
  idToken: 'id-2',
  accessTokenExpiresAt: clock.now() + HOUR_MS,
  idTokenClaims: { iss: 'https://idp.example', aud: 'bff', nonce: 'n-1', sid: 'idp-session-1', sub: 'alice', name: 'Alice Admin', roles: ['user', 'admin'] },
})

interface InstanceOptions {
  refresher?: Partial<TokenRefresherOptions>
  onLockWait?: () => void
}

/** One gateway instance's session manager and refresher, on a store it may share with others. */
function instance (store: SessionStore, clock: FakeClock, oidc: OidcClient, options: InstanceOptions = {}) {
  const sessions = createSessionManager({
    store,
    crypto: createSessionCrypto([SECRET]),
    idleTimeoutSeconds: 3600,
    absoluteTimeoutSeconds: 86_400,
    now: clock.now,
  })
  const observed = { failures: [] as RefreshFailure[], lockWaits: 0, successes: 0 }
  const refresher = createTokenRefresher({
    sessions,
    leases: store,
    revocation: testRevocation(store, sessions),
    oidc,
    skewSeconds: SKEW_SECONDS,
    rolesClaim: 'roles',
    revokeRefreshToken: async () => {},
    observer: {
      attempt () {},
      success: () => { observed.successes += 1 },
      failure: (reason) => { observed.failures.push(reason) },
      lockWait: () => {
        observed.lockWaits += 1
        options.onLockWait?.()
      },
      grantRejected () {},
    },
    now: clock.now,
    ...options.refresher,
  })
  return { sessions, refresher, observed }
}

/** A signed-in alice whose access token expires at `expiresAt`; her claims hold her roles, as a login stores them. */
async function signedIn (sessions: SessionManager, expiresAt: number, secrets: Partial<SessionSecrets> = {}) {
  return sessions.create(ALICE, { accessToken: 'access-1', refreshToken: 'refresh-1', accessTokenExpiresAt: expiresAt, claims: { sub: 'alice', name: 'Alice', roles: ['user'] }, roles: ['user'], ...secrets })
}

/** The memory store, announcing each token write the way the Redis store's invalidation channel does. */
function announcingWrites (store: SessionStore, waiters: ChangeWaiters): SessionStore {
  return {
    ...store,
    async replace (handle, expectedVersion, next, ttlMs) {
      const written = await store.replace(handle, expectedVersion, next, ttlMs)
      if (written) waiters.announce({ kind: 'session', handle })
      return written
    },
  }
}

describe('token refresher: when it refreshes', () => {
  it('not before the access token is within the skew of its expiry: until then the session is used as it is', async () => {
    const clock = fakeClock()
    const idp = tokenEndpoint(async () => rotated(clock))
    const { sessions, refresher } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { session } = await signedIn(sessions, clock.now() + 2 * MINUTE_MS)

    expect(await refresher.ensureFresh(session)).toBe(session)
    clock.advance(2 * MINUTE_MS - SKEW_SECONDS * 1000 - 1)
    expect(refresher.needsRefresh(session)).toBe(false)
    expect(await refresher.ensureFresh(session)).toBe(session)
    expect(idp.presented).toEqual([])

    clock.advance(1)
    expect((await refresher.ensureFresh(session)).secrets.accessToken).toBe('access-2')
    expect(idp.presented).toEqual(['refresh-1'])
  })
})

describe('token refresher: what a refresh stores', () => {
  it('the new tokens, and the roles and profile from the new ID token\'s claims (protocol claims left out)', async () => {
    const clock = fakeClock()
    const idp = tokenEndpoint(async () => rotated(clock))
    const { sessions, refresher } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { session, cookieValue } = await signedIn(sessions, clock.now())

    const fresh = await refresher.ensureFresh(session)
    const stored = (await sessions.load(cookieValue))!
    expect(stored.secrets).toEqual({
      accessToken: 'access-2',
      refreshToken: 'refresh-2',
      // The answer's ID token is verified for its claims, not kept: nothing reads it.
      accessTokenExpiresAt: clock.now() + HOUR_MS,
      csrfToken: session.secrets.csrfToken,
      claims: { sub: 'alice', name: 'Alice Admin', roles: ['user', 'admin'] },
      roles: ['user', 'admin'],
      // No operator asked for a refresh of this user's sessions (claims refresh on demand).
      refreshRequestsSeen: 0,
    })
    expect(fresh.secrets).toEqual(stored.secrets)
    expect(stored.version).toBe(2)
  })

  it('from an IdP that does not rotate (no refresh token in the answer): the one held is kept', async () => {
    const clock = fakeClock()
    const idp = tokenEndpoint(async () => ({ accessToken: 'access-2', accessTokenExpiresAt: clock.now() + HOUR_MS, idTokenClaims: { sub: 'alice', roles: ['user'] } }))
    const { sessions, refresher } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { session } = await signedIn(sessions, clock.now())
    expect((await refresher.ensureFresh(session)).secrets).toMatchObject({ accessToken: 'access-2', refreshToken: 'refresh-1' })
  })

  it('an answer without an ID token: roles and profile from userinfo, asked with the new access token', async () => {
    const clock = fakeClock()
    const asked: Array<[string, string]> = []
    const idp = tokenEndpoint(async () => ({ accessToken: 'access-2', refreshToken: 'refresh-2', accessTokenExpiresAt: clock.now() + HOUR_MS }), {
      userInfo: async (accessToken, sub) => {
        asked.push([accessToken, sub])
        return { sub: 'alice', email: 'alice@example.com', roles: ['auditor'] }
      },
    })
    const { sessions, refresher } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { session, cookieValue } = await signedIn(sessions, clock.now())
    await refresher.ensureFresh(session)
    expect(asked).toEqual([['access-2', 'alice']])
    expect((await sessions.load(cookieValue))?.secrets).toMatchObject({ roles: ['auditor'], claims: { sub: 'alice', email: 'alice@example.com', roles: ['auditor'] } })
  })

  it('no ID token and userinfo fails: the new tokens are stored, the old claims and roles kept', async () => {
    const clock = fakeClock()
    const idp = tokenEndpoint(async () => ({ accessToken: 'access-2', refreshToken: 'refresh-2', accessTokenExpiresAt: clock.now() + HOUR_MS }), {
      userInfo: async () => { throw new IdpUnavailable() },
    })
    const { sessions, refresher } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { session, cookieValue } = await signedIn(sessions, clock.now())
    await refresher.ensureFresh(session)
    expect((await sessions.load(cookieValue))?.secrets).toMatchObject({ accessToken: 'access-2', refreshToken: 'refresh-2', claims: { sub: 'alice', name: 'Alice', roles: ['user'] }, roles: ['user'] })
  })
})

describe('token refresher: one token call per session', () => {
  it('concurrent requests on one instance share one call, and all get its tokens', async () => {
    const clock = fakeClock()
    const answer = deferred<TokenResult>()
    const idp = tokenEndpoint(() => answer.promise)
    const { sessions, refresher, observed } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { cookieValue } = await signedIn(sessions, clock.now())
    // Each request loaded the session on its own, as concurrent requests do; all ask before the IdP answers.
    const loaded = await Promise.all(Array.from({ length: 5 }, () => sessions.load(cookieValue)))
    const refreshes = loaded.map(session => refresher.ensureFresh(session!))
    answer.resolve(rotated(clock))
    const results = await Promise.all(refreshes)
    expect(idp.presented).toEqual(['refresh-1'])
    expect(results.map(r => r.secrets.accessToken)).toEqual(Array(5).fill('access-2'))
    expect(observed.lockWaits).toBe(0)
  })

  it('two instances sharing one store make one call between them: the other waits, is woken by the winner\'s write, and gets its tokens', async () => {
    const clock = fakeClock()
    const waiters = createChangeWaiters()
    const store = announcingWrites(createMemoryStore(clock.now), waiters)
    const answer = deferred<TokenResult>()
    const atIdp = deferred()
    const idp = tokenEndpoint(async () => {
      atIdp.resolve()
      return answer.promise
    })
    const waiting = deferred()
    // A poll far longer than the test's timeout: only the winner's write can wake the waiter in time.
    const refresher = { waitForChange: (handle: string, ms: number) => waiters.wait(handle, ms), pollIntervalMs: 10 * 60_000 }
    const one = instance(store, clock, idp.oidc, { refresher })
    const two = instance(store, clock, idp.oidc, { refresher, onLockWait: () => waiting.resolve() })
    const { cookieValue } = await signedIn(one.sessions, clock.now())

    const winner = one.refresher.ensureFresh((await one.sessions.load(cookieValue))!)
    await atIdp.promise
    const loser = two.refresher.ensureFresh((await two.sessions.load(cookieValue))!)
    await waiting.promise
    answer.resolve(rotated(clock))

    const [won, lost] = await Promise.all([winner, loser])
    expect(idp.presented).toEqual(['refresh-1'])
    expect(lost.secrets).toEqual(won.secrets)
    expect(lost.secrets.refreshToken).toBe('refresh-2')
    expect([one.observed.lockWaits, two.observed.lockWaits]).toEqual([0, 1])
    expect(two.observed.failures).toEqual([])
  }, 5000)

  it('an instance whose winner never writes gives up after maxWaitMs with IdpUnavailable, and the session is kept', async () => {
    const clock = fakeClock()
    const store = createMemoryStore(clock.now)
    const answer = deferred<TokenResult>()
    const atIdp = deferred()
    const idp = tokenEndpoint(async () => {
      atIdp.resolve()
      return answer.promise
    })
    const one = instance(store, clock, idp.oidc, { refresher: { lockLeaseMs: HOUR_MS } })
    // Each wait of the other instance is a step of the fake clock, not real time.
    const two = instance(store, clock, idp.oidc, {
      refresher: { maxWaitMs: 20_000, pollIntervalMs: 1000, waitForChange: async (_handle, ms) => { clock.advance(ms) } },
    })
    const { cookieValue, session } = await signedIn(one.sessions, clock.now())

    const winner = one.refresher.ensureFresh((await one.sessions.load(cookieValue))!)
    await atIdp.promise
    await expect(two.refresher.ensureFresh((await two.sessions.load(cookieValue))!)).rejects.toBeInstanceOf(IdpUnavailable)
    expect(two.observed.failures).toEqual(['wait_timeout'])
    expect((await two.sessions.reload(session))?.secrets.refreshToken).toBe('refresh-1')

    answer.resolve(rotated(clock))
    await winner
    expect(idp.presented).toEqual(['refresh-1'])
  })
})

describe('token refresher: failures', () => {
  it.each([
    ['cannot be reached', () => new IdpUnavailable()],
    ['answers with something that fails the client\'s checks', () => new OidcResponseInvalidError('OAUTH_INVALID_RESPONSE')],
    ['fails in an unforeseen way', () => new TypeError('fetch failed')],
  ])('the IdP %s: IdpUnavailable, the session and its tokens kept, and the next request tries again', async (_case, failure) => {
    const clock = fakeClock()
    const idp = tokenEndpoint(async (call) => {
      if (call === 1) throw failure()
      return rotated(clock)
    })
    const { sessions, refresher, observed } = instance(createMemoryStore(clock.now), clock, idp.oidc)
    const { session, cookieValue } = await signedIn(sessions, clock.now())

    await expect(refresher.ensureFresh(session)).rejects.toBeInstanceOf(IdpUnavailable)
    expect(observed.failures).toEqual(['idp_unavailable'])
    expect((await sessions.load(cookieValue))?.secrets.refreshToken).toBe('refresh-1')

    expect((await refresher.ensureFresh(session)).secrets.accessToken).toBe('access-2')
    expect(idp.presented).toEqual(['refresh-1', 'refresh-1'])
  })

  it('a session without a refresh token: SessionExpired, the session ended, and no token call', async () => {
    const clock = fakeClock()
    const store = createMemoryStore(clock.now)
    const idp = tokenEndpoint(async () => rotated(clock))
    const { sessions, refresher, observed } = instance(store, clock, idp.oidc)
    const { session, cookieValue } = await signedIn(sessions, clock.now(), { refreshToken: undefined })

    await expect(refresher.ensureFresh(session)).rejects.toBeInstanceOf(SessionExpired)
    expect(idp.presented).toEqual([])
    expect(observed.failures).toEqual(['rejected'])
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(await store.get(session.handle)).toBeUndefined()
  })
})

/** What the IdP does with a refresh: `meanwhile` runs while it is "at the IdP", then it answers. */
interface Script {
  meanwhile: (sessions: SessionManager, session: ActiveSession, store: SessionStore) => Promise<void>
  answer: 'granted' | 'refused'
}

function raceOidc (script: Script, sessions: () => SessionManager, session: () => ActiveSession, store: SessionStore): OidcClient {
  return scriptedOidc({
    async refresh (): Promise<TokenResult> {
      await script.meanwhile(sessions(), session(), store)
      if (script.answer === 'refused') throw new OidcRejectedError('invalid_grant')
      return { accessToken: 'access-2', refreshToken: 'refresh-2', accessTokenExpiresAt: Date.now() + HOUR_MS, idTokenClaims: { sub: 'alice', roles: ['user'] } }
    },
  })
}

/** A memory store and a session manager over it, as the refresher's tests use them. */
function sessionLayer () {
  const store = createMemoryStore()
  const sessions = createSessionManager({
    store,
    crypto: createSessionCrypto([SECRET]),
    idleTimeoutSeconds: 3600,
    absoluteTimeoutSeconds: 86_400,
  })
  return { store, sessions }
}

async function race (script: Script) {
  const { store, sessions } = sessionLayer()
  const { session } = await sessions.create(
    { sub: 'alice', sid: 'idp-session-1', ip: '127.0.0.1', userAgent: 'unit' },
    { accessToken: 'access-1', refreshToken: 'refresh-1', accessTokenExpiresAt: 0, claims: {}, roles: ['user'] })
  const failures: RefreshFailure[] = []
  const grantsRejected: string[] = []
  const revoked: Array<string | undefined> = []
  const refresher = createTokenRefresher({
    sessions,
    leases: store,
    revocation: testRevocation(store, sessions),
    oidc: raceOidc(script, () => sessions, () => session, store),
    skewSeconds: 0,
    rolesClaim: 'roles',
    revokeRefreshToken: async (secrets) => { revoked.push(secrets.refreshToken) },
    observer: {
      attempt () {},
      success () {},
      failure: (reason) => { failures.push(reason) },
      lockWait () {},
      grantRejected: (_session, oauthError) => { grantsRejected.push(oauthError) },
    },
  })
  const outcome = await refresher.ensureFresh(session).then(
    (fresh) => ({ fresh, error: undefined }),
    (error: unknown) => ({ fresh: undefined, error }))
  return { ...outcome, sessions, session, failures, grantsRejected, revoked, stored: await store.get(session.handle) }
}

const endings: Record<string, Script['meanwhile']> = {
  'destroyed (its logout)': async (_sessions, session, store) => { await store.destroy(session.handle) },
  'revoked (an operator, the back-channel, another device)': async (_sessions, session, store) => { await store.revoke(session.handle, 'operator') },
  'ended by an epoch bump (the user signed out everywhere)': async (_sessions, session, store) => {
    await store.revokeByUser(session.meta.sub, 'operator')
    await store.bumpUserEpoch(session.meta.sub, HOUR_MS)
  },
}

describe('token refresher: the IdP refuses the refresh', () => {
  it('of a session still holding that refresh token as its newest: theft suspected, session destroyed, 401', async () => {
    const result = await race({ meanwhile: async () => {}, answer: 'refused' })
    expect(result.error).toBeInstanceOf(SessionExpired)
    expect(result.grantsRejected).toEqual(['invalid_grant'])
    expect(result.failures).toEqual(['rejected'])
    expect(result.stored).toBeUndefined()
  })

  it.each(Object.entries(endings))('of a session %s meanwhile: 401, no theft suspected', async (_ending, meanwhile) => {
    const result = await race({ meanwhile, answer: 'refused' })
    expect(result.error).toBeInstanceOf(SessionExpired)
    expect(result.grantsRejected).toEqual([])
    expect(result.failures).toEqual(['session_gone'])
    expect(result.revoked).toEqual([])
  })

  it('of a session given a newer refresh token meanwhile (by another writer): its fresh tokens serve the request, no theft suspected', async () => {
    const result = await race({
      meanwhile: async (sessions, session) => {
        const current = (await sessions.reload(session))!
        await sessions.saveSecrets(current, { ...current.secrets, accessToken: 'access-other', refreshToken: 'refresh-other', accessTokenExpiresAt: Date.now() + HOUR_MS })
      },
      answer: 'refused',
    })
    expect(result.error).toBeUndefined()
    expect(result.fresh?.secrets.accessToken).toBe('access-other')
    expect(result.grantsRejected).toEqual([])
    expect(result.stored?.revoked).toBeUndefined()
  })
})

describe('token refresher: the IdP grants the refresh', () => {
  it('of a session still live: the new tokens are stored, nothing revoked', async () => {
    const result = await race({ meanwhile: async () => {}, answer: 'granted' })
    expect(result.fresh?.secrets.refreshToken).toBe('refresh-2')
    expect((await result.sessions.reload(result.session))?.secrets.refreshToken).toBe('refresh-2')
    expect(result.revoked).toEqual([])
  })

  it.each(Object.entries(endings))('of a session %s meanwhile: 401, and the refresh token just issued is revoked', async (_ending, meanwhile) => {
    const result = await race({ meanwhile, answer: 'granted' })
    expect(result.error).toBeInstanceOf(SessionExpired)
    expect(result.revoked).toEqual(['refresh-2'])
    expect(result.grantsRejected).toEqual([])
    expect(result.failures).toEqual(['session_gone'])
  })
})

/** A session with an access token good for an hour, and a refresher whose IdP can be held mid-refresh. */
async function markable () {
  const { store, sessions } = sessionLayer()
  const { session } = await sessions.create(
    { sub: 'alice', ip: '127.0.0.1', userAgent: 'unit' },
    { accessToken: 'access-0', refreshToken: 'refresh-0', accessTokenExpiresAt: Date.now() + HOUR_MS, claims: {}, roles: ['user'] })
  let calls = 0
  let hold: Promise<void> | undefined
  const oidc = scriptedOidc({
    refresh: async () => {
      calls += 1
      const n = calls
      await hold
      return { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, accessTokenExpiresAt: Date.now() + HOUR_MS, idTokenClaims: { sub: 'alice', roles: ['user', `role-${n}`] } }
    }
  })
  const refresher = createTokenRefresher({
    sessions,
    leases: store,
    revocation: testRevocation(store, sessions),
    oidc,
    skewSeconds: 0,
    rolesClaim: 'roles',
    revokeRefreshToken: async () => {},
    observer: { attempt () {}, success () {}, failure () {}, lockWait () {}, grantRejected () {} },
  })
  return {
    store,
    sessions,
    session,
    refresher,
    calls: () => calls,
    /** Holds the IdP's answers until the returned function is called. */
    holdIdp: () => {
      let release = () => {}
      hold = new Promise<void>(resolve => { release = resolve })
      return () => { hold = undefined; release() }
    },
  }
}

describe('token refresher: a refresh asked for from elsewhere (an operator, a security event)', () => {
  it('refreshes a session with a good token once it is marked, exactly once, with the newest roles', async () => {
    const { store, sessions, session, refresher, calls } = await markable()
    expect(refresher.needsRefresh(session)).toBe(false)
    await store.requestRefresh(session.handle)
    const marked = (await sessions.reload(session))!
    expect(refresher.needsRefresh(marked)).toBe(true)
    const fresh = await refresher.ensureFresh(marked)
    expect(calls()).toBe(1)
    expect(fresh.secrets.roles).toEqual(['user', 'role-1'])
    expect(refresher.needsRefresh(fresh)).toBe(false)
    const stored = (await sessions.reload(session))!
    expect(refresher.needsRefresh(stored)).toBe(false)
    expect(await refresher.ensureFresh(stored)).toBe(stored)
    expect(calls()).toBe(1)
  })

  it('stays due when the mark comes while a refresh is already at the IdP: that refresh may predate the change', async () => {
    const { store, sessions, session, refresher, calls, holdIdp } = await markable()
    await store.requestRefresh(session.handle)
    const release = holdIdp()
    const first = refresher.ensureFresh((await sessions.reload(session))!)
    await new Promise(resolve => setTimeout(resolve, 10))
    expect(calls()).toBe(1)
    await store.requestRefresh(session.handle)
    release()
    await first
    const stored = (await sessions.reload(session))!
    expect(refresher.needsRefresh(stored)).toBe(true)
    expect((await refresher.ensureFresh(stored)).secrets.accessToken).toBe('access-2')
    expect(calls()).toBe(2)
  })

  it('a request that saw the mark does not take the answer of a refresh that started before it', async () => {
    const { store, sessions, session, refresher, calls, holdIdp } = await markable()
    await store.requestRefresh(session.handle)
    const release = holdIdp()
    const early = refresher.ensureFresh((await sessions.reload(session))!)
    await new Promise(resolve => setTimeout(resolve, 10))
    await store.requestRefresh(session.handle)
    // Read after the second mark, while the first refresh is still in flight in this process.
    const late = refresher.ensureFresh((await sessions.reload(session))!)
    release()
    expect((await early).secrets.accessToken).toBe('access-1')
    const served = await late
    expect(served.secrets.accessToken).toBe('access-2')
    expect(refresher.needsRefresh(served)).toBe(false)
    expect(calls()).toBe(2)
  })
})
