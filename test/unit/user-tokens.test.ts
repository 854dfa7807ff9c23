/**
 * Narrowed user tokens and the gateway's client tokens, on the memory store
 * with a scripted OIDC client and a fake clock: what each refusal of the IdP
 * does to the session (the theft rule is only for the session's newest refresh
 * token refused as such), that a refresh never names an audience the login
 * did not ask for, and that client tokens are fetched one at a time and kept.
 * (The same paths against the real IdP: test/integration/token-policy*.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { IdpUnavailable, SessionExpired, Unauthenticated } from '../../gateway/errors.js'
import { createClientTokens } from '../../gateway/auth/client-tokens.js'
import { OidcRejectedError, type OidcClient, type TokenRequest, type TokenResult } from '../../gateway/auth/oidc-client.js'
import { createTokenRefresher } from '../../gateway/auth/token-refresher.js'
import { createUserTokens, type UserTokenTarget } from '../../gateway/auth/user-tokens.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createSessionManager, type SessionSecrets } from '../../gateway/session/sessions.js'
import { fakeClock, type FakeClock } from '../helpers/fake-clock.js'
import { testRevocation } from '../helpers/revocation.js'
import { scriptedOidc } from '../helpers/scripted-oidc.js'

const HOUR_MS = 3_600_000
const ORDERS = 'https://orders.example'
const ALICE = { sub: 'alice', ip: '127.0.0.1', userAgent: 'unit' }
const ordersToken: UserTokenTarget = { audience: ORDERS, scope: 'orders:read', grant: 'refresh_token', dpop: false }
const exchanged: UserTokenTarget = { audience: ORDERS, scope: undefined, grant: 'token_exchange', dpop: false }

function gateway (clock: FakeClock, script: Partial<OidcClient>) {
  const store = createMemoryStore(clock.now)
  const sessions = createSessionManager({ store, crypto: createSessionCrypto(['unit-test-session-secret-0123456789-abcdefgh']), idleTimeoutSeconds: 3600, absoluteTimeoutSeconds: 86_400, now: clock.now })
  const revocation = testRevocation(store, sessions)
  const observed = { thefts: 0, targetRefusals: [] as string[], failures: [] as string[], fetches: 0 }
  const oidc = scriptedOidc(script)
  const refresher = createTokenRefresher({
    sessions,
    leases: store,
    revocation,
    oidc,
    skewSeconds: 30,
    rolesClaim: 'roles',
    revokeRefreshToken: async () => {},
    observer: {
      attempt () {},
      success () {},
      failure () {},
      lockWait () {},
      grantRejected: () => { observed.thefts += 1 },
      targetRefused: (_session, oauthError) => { observed.targetRefusals.push(oauthError) },
    },
    now: clock.now,
  })
  const userTokens = createUserTokens({
    refresher,
    sessions,
    revocation,
    oidc,
    skewSeconds: 30,
    observer: {
      fetch: () => { observed.fetches += 1 },
      failure: (_audience, _grant, reason) => { observed.failures.push(reason) },
    },
    now: clock.now,
  })
  const signIn = (secrets: Partial<SessionSecrets> = {}) => sessions.create(ALICE, {
    accessToken: 'own-1', refreshToken: 'refresh-1', accessTokenExpiresAt: clock.now() + HOUR_MS, claims: { sub: 'alice', roles: ['user'] }, roles: ['user'], audiences: [ORDERS], ...secrets,
  })
  return { sessions, userTokens, observed, signIn }
}

const answer = (clock: FakeClock, accessToken: string, extra: Partial<TokenResult> = {}): TokenResult =>
  ({ accessToken, refreshToken: `${accessToken}-refresh`, accessTokenExpiresAt: clock.now() + HOUR_MS, ...extra })

describe('narrowed user tokens', () => {
  it('are fetched with the refresh token for the audience and scopes, kept, and refreshed near expiry', async () => {
    const clock = fakeClock()
    const asked: Array<[string, TokenRequest | undefined]> = []
    const { userTokens, signIn, sessions } = gateway(clock, {
      refresh: async (refreshToken, request) => {
        asked.push([refreshToken, request])
        return answer(clock, `orders-${asked.length}`)
      },
    })
    const { session, cookieValue } = await signIn()
    expect(userTokens.stale(session, ordersToken)).toBe(true)
    const fresh = await userTokens.obtain(session, ordersToken)
    expect(userTokens.token(fresh, ordersToken)).toBe('orders-1')
    expect(fresh.secrets).toMatchObject({ accessToken: 'own-1', refreshToken: 'orders-1-refresh' })
    expect(asked).toEqual([['refresh-1', { resource: ORDERS, scope: 'orders:read' }]])

    const stored = (await sessions.load(cookieValue))!
    expect(userTokens.stale(stored, ordersToken)).toBe(false)
    clock.advance(HOUR_MS - 30_000)
    expect(userTokens.stale(stored, ordersToken)).toBe(true)
    expect(userTokens.token(await userTokens.obtain(stored, ordersToken), ordersToken)).toBe('orders-2')
    expect(asked[1]![0]).toBe('orders-1-refresh')
  })

  it('are never refreshed for an audience the login did not ask for: 401, no token call', async () => {
    const clock = fakeClock()
    const { userTokens, signIn, observed } = gateway(clock, {})
    const { session } = await signIn({ audiences: [] })
    await expect(userTokens.obtain(session, ordersToken)).rejects.toBeInstanceOf(Unauthenticated)
    expect(observed.failures).toEqual(['not_granted'])
  })

  it('an IdP refusing the audience (invalid_target) ends this session, not all of the user\'s as theft', async () => {
    const clock = fakeClock()
    const { userTokens, signIn, observed, sessions } = gateway(clock, {
      refresh: async () => { throw new OidcRejectedError('invalid_target') },
    })
    const { session, cookieValue } = await signIn()
    const other = await signIn()
    await expect(userTokens.obtain(session, ordersToken)).rejects.toBeInstanceOf(SessionExpired)
    expect(observed).toMatchObject({ thefts: 0, targetRefusals: ['invalid_target'] })
    expect(await sessions.load(cookieValue)).toBeUndefined()
    expect(await sessions.load(other.cookieValue)).toBeDefined()
  })

  it('an IdP refusing the gateway itself (invalid_client) keeps the session: 502, as in an outage', async () => {
    const clock = fakeClock()
    const { userTokens, signIn, observed, sessions } = gateway(clock, {
      refresh: async () => { throw new OidcRejectedError('invalid_client') },
    })
    const { session, cookieValue } = await signIn()
    await expect(userTokens.obtain(session, ordersToken)).rejects.toBeInstanceOf(IdpUnavailable)
    expect(observed.thefts).toBe(0)
    expect(await sessions.load(cookieValue)).toBeDefined()
  })

  it('by exchange: the session\'s own token (refreshed first when stale) is traded, once per audience', async () => {
    const clock = fakeClock()
    const calls: string[] = []
    const { userTokens, signIn } = gateway(clock, {
      refresh: async (refreshToken, request) => {
        calls.push(`refresh ${refreshToken} ${request?.resource ?? 'own'}`)
        return answer(clock, 'own-2')
      },
      exchangeToken: async (subject, request) => {
        calls.push(`exchange ${subject} ${request.resource}`)
        return answer(clock, 'orders-x', { refreshToken: undefined })
      },
    })
    const { session } = await signIn({ accessTokenExpiresAt: clock.now() })
    const [a, b] = await Promise.all([userTokens.obtain(session, exchanged), userTokens.obtain(session, exchanged)])
    expect(calls).toEqual(['refresh refresh-1 own', `exchange own-2 ${ORDERS}`])
    expect(userTokens.token(a, exchanged)).toBe('orders-x')
    expect(b.secrets.apiTokens).toEqual(a.secrets.apiTokens)
    expect(a.secrets.refreshToken).toBe('own-2-refresh')
  })

  it('by exchange: invalid_grant (the user is gone at the IdP) ends the session; another refusal keeps it (502)', async () => {
    const clock = fakeClock()
    let refusal = 'invalid_grant'
    const { userTokens, signIn, sessions, observed } = gateway(clock, {
      exchangeToken: async () => { throw new OidcRejectedError(refusal) },
    })
    const gone = await signIn()
    await expect(userTokens.obtain(gone.session, exchanged)).rejects.toBeInstanceOf(SessionExpired)
    expect(await sessions.load(gone.cookieValue)).toBeUndefined()
    refusal = 'unauthorized_client'
    const kept = await signIn()
    await expect(userTokens.obtain(kept.session, exchanged)).rejects.toBeInstanceOf(IdpUnavailable)
    expect(await sessions.load(kept.cookieValue)).toBeDefined()
    expect(observed).toMatchObject({ thefts: 0, failures: ['rejected', 'rejected'] })
  })

  it('bound with DPoP: a key is made for the session, the IdP gets its pair, and the token is marked bound', async () => {
    const clock = fakeClock()
    const keys: Array<CryptoKeyPair | undefined> = []
    const { userTokens, signIn } = gateway(clock, {
      refresh: async (_token, request) => {
        keys.push(request?.dpop)
        return answer(clock, 'orders-bound')
      },
    })
    const { session } = await signIn()
    const target = { ...ordersToken, dpop: true }
    const fresh = await userTokens.obtain(session, target)
    expect(keys[0]?.privateKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' })
    expect(fresh.secrets.dpopKey).toMatchObject({ kty: 'EC', crv: 'P-256' })
    expect(fresh.secrets.apiTokens?.[ORDERS]).toMatchObject({ token: 'orders-bound', dpop: true })
    expect(userTokens.dpopKey(fresh, target)).toBeDefined()
    // The same token asked for without DPoP (a policy changed) is fetched again, unbound.
    expect(userTokens.stale(fresh, ordersToken)).toBe(true)
  })
})

describe('client tokens', () => {
  it('are fetched once however many ask at once, kept until near expiry, and kept apart by audience', async () => {
    const clock = fakeClock()
    const asked: TokenRequest[] = []
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const fetches: Array<string | undefined> = []
    const tokens = createClientTokens({
      oidc: {
        clientCredentials: async (request) => {
          asked.push(request)
          await gate
          return answer(clock, `client-${asked.length}`, { refreshToken: undefined })
        },
      },
      skewSeconds: 30,
      observer: { fetch: (audience) => { fetches.push(audience) }, failure () {} },
      now: clock.now,
    })
    const catalog = { audience: 'https://catalog.example', scope: undefined, dpop: false }
    expect(tokens.current(catalog)).toBeUndefined()
    const pending = Array.from({ length: 10 }, () => tokens.obtain(catalog))
    release()
    expect(new Set((await Promise.all(pending)).map(c => c.token))).toEqual(new Set(['client-1']))
    expect(tokens.current(catalog)?.token).toBe('client-1')
    expect(asked).toEqual([{ resource: 'https://catalog.example' }])

    expect((await tokens.obtain({ ...catalog, audience: undefined })).token).toBe('client-2')
    clock.advance(HOUR_MS - 30_000)
    expect(tokens.current(catalog)).toBeUndefined()
    expect((await tokens.obtain(catalog)).token).toBe('client-3')
    expect(fetches).toEqual(['https://catalog.example', undefined, 'https://catalog.example'])
  })

  it('a refusal is a 502 for the request, and nothing is kept', async () => {
    const clock = fakeClock()
    const failures: string[] = []
    const tokens = createClientTokens({
      oidc: { clientCredentials: async () => { throw new OidcRejectedError('unauthorized_client') } },
      skewSeconds: 30,
      observer: { fetch () {}, failure: (_audience, reason) => { failures.push(reason) } },
      now: clock.now,
    })
    const target = { audience: undefined, scope: undefined, dpop: false }
    await expect(tokens.obtain(target)).rejects.toBeInstanceOf(IdpUnavailable)
    expect(tokens.current(target)).toBeUndefined()
    expect(failures).toEqual(['rejected'])
  })
})
