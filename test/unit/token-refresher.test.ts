/**
 * The refresher's decision when a session changes while the IdP is refreshing it, on the
 * memory store with a scripted OIDC client: a refusal is theft only if the session still
 * holds the refused token as its newest; a token granted for an ended session is revoked.
 * (The same races against the real IdP and Redis: test/integration/refresh-revocation-race.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { SessionExpired } from '../../gateway/errors.js'
import { createTokenRefresher, type RefreshFailure } from '../../gateway/auth/token-refresher.js'
import { OidcRejectedError, type OidcClient, type TokenResult } from '../../gateway/auth/oidc-client.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createSessionManager, type ActiveSession, type SessionManager } from '../../gateway/session/sessions.js'
import type { SessionStore } from '../../gateway/session/store.js'
import { testRevocation } from '../helpers/revocation.js'

const HOUR_MS = 3_600_000

/** What the IdP does with a refresh: `meanwhile` runs while it is "at the IdP", then it answers. */
interface Script {
  meanwhile: (sessions: SessionManager, session: ActiveSession, store: SessionStore) => Promise<void>
  answer: 'granted' | 'refused'
}

/** An OIDC client that can only refresh, as `refresh` says: all the refresher uses. */
function refreshingOidc (refresh: () => Promise<TokenResult>): OidcClient {
  const unused = () => { throw new Error('not used by the refresher') }
  return {
    ready: unused,
    newLoginChallenge: unused,
    authorizationUrl: unused,
    exchangeCode: unused,
    userInfo: unused,
    endSessionUrl: unused,
    jwksUri: unused,
    revoke: unused,
    refresh,
  }
}

function scriptedOidc (script: Script, sessions: () => SessionManager, session: () => ActiveSession, store: SessionStore): OidcClient {
  return refreshingOidc(async () => {
    await script.meanwhile(sessions(), session(), store)
    if (script.answer === 'refused') throw new OidcRejectedError('invalid_grant')
    return { accessToken: 'access-2', refreshToken: 'refresh-2', accessTokenExpiresAt: Date.now() + HOUR_MS, idTokenClaims: { sub: 'alice', roles: ['user'] } }
  })
}

/** A memory store and a session manager over it, as the refresher's tests use them. */
function sessionLayer () {
  const store = createMemoryStore()
  const sessions = createSessionManager({
    store,
    crypto: createSessionCrypto(['unit-test-session-secret-0123456789-abcdefgh']),
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
    oidc: scriptedOidc(script, () => sessions, () => session, store),
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
  const oidc = refreshingOidc(async () => {
    calls += 1
    const n = calls
    await hold
    return { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, accessTokenExpiresAt: Date.now() + HOUR_MS, idTokenClaims: { sub: 'alice', roles: ['user', `role-${n}`] } }
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
