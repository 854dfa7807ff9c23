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

function scriptedOidc (script: Script, sessions: () => SessionManager, session: () => ActiveSession, store: SessionStore): OidcClient {
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
    async refresh (): Promise<TokenResult> {
      await script.meanwhile(sessions(), session(), store)
      if (script.answer === 'refused') throw new OidcRejectedError('invalid_grant')
      return { accessToken: 'access-2', refreshToken: 'refresh-2', accessTokenExpiresAt: Date.now() + HOUR_MS, idTokenClaims: { sub: 'alice', roles: ['user'] } }
    },
  }
}

async function race (script: Script) {
  const store = createMemoryStore()
  const sessions = createSessionManager({
    store,
    crypto: createSessionCrypto(['unit-test-session-secret-0123456789-abcdefgh']),
    idleTimeoutSeconds: 3600,
    absoluteTimeoutSeconds: 86_400,
  })
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
