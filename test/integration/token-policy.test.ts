/**
 * Token policy per route (CONTRACT Part 2), against real parts: the
 * oidc-provider IdP with several APIs (RFC 8707 resource servers), the
 * token-only APIs that accept only their own audience, Redis and the gateway.
 *
 * - `user` routes with an `audience` get a token narrowed to that API (and its
 *   `scopes`), by refresh or by token exchange; no token ever reaches another API;
 * - `client` routes get the gateway's own token, `none` routes nothing,
 *   `user-optional` routes the user's token only with a session;
 * - rules without roles admit anyone on those, and the CSRF/Origin rules still hold.
 */
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { UpstreamApi } from '../../upstream-mock/api.js'
import { metricValue } from '../helpers/admin-metrics.js'
import { TEST_CLIENT_ID } from '../helpers/gateway.js'
import { signIn, waitFor } from '../helpers/sign-in.js'
import { startStack, type Stack } from '../helpers/stack.js'

const ORDERS = 'https://orders.test.example'
const BILLING = 'https://billing.test.example'
const CATALOG = 'https://catalog.test.example'
const SCOPES = 'openid profile email offline_access orders:read orders:write billing:read catalog:read'

const APIS = {
  orders: { audience: ORDERS, scopes: ['orders:read', 'orders:write'] },
  billing: { audience: BILLING, scopes: ['billing:read', 'billing:write'] },
  catalog: { audience: CATALOG, scopes: ['catalog:read'] },
}

/** Every route type of the contract, each on its own API (the default API serves the session's own token). */
function tokenPolicy (upstream: string, apis: Record<string, UpstreamApi>) {
  return {
    routes: [
      {
        prefix: '/orders',
        upstream: apis.orders!.url,
        token: { type: 'user', audience: ORDERS, scopes: ['orders:read'] },
        allow: [
          { methods: ['GET', 'POST'], path: '/orders', roles: ['user'] },
          { methods: ['GET'], path: '/me', roles: ['user'] },
        ],
      },
      {
        prefix: '/billing',
        upstream: apis.billing!.url,
        token: { type: 'user', audience: BILLING, exchange: 'token-exchange' },
        allow: [
          { methods: ['GET'], path: '/invoices', roles: ['user'] },
          { methods: ['GET'], path: '/me', roles: ['user'] },
        ],
      },
      {
        prefix: '/catalog',
        upstream: apis.catalog!.url,
        token: { type: 'client', audience: CATALOG },
        allow: [
          { methods: ['GET'], path: '/me' },
          { methods: ['GET'], path: '/echo/:thing', roles: ['user'] },
        ],
      },
      {
        prefix: '/status',
        upstream,
        token: { type: 'none' },
        allow: [{ methods: ['GET', 'POST'], path: '/public/:thing' }],
      },
      {
        prefix: '/maybe',
        upstream,
        token: { type: 'user-optional' },
        allow: [
          { methods: ['GET'], path: '/public/:thing' },
          { methods: ['GET'], path: '/me', roles: ['user'] },
        ],
      },
      {
        prefix: '/api',
        upstream,
        allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }],
      },
    ],
  }
}

const lastReceived = (api: UpstreamApi) => api.received.at(-1)

const metric = (stack: Stack, line: string) => metricValue(stack.gateway.adminUrl, line)

describe('token policy per route', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({
      apis: APIS,
      idpClient: { clientCredentials: true, tokenExchange: true },
      gatewayEnv: { OIDC_SCOPES: SCOPES },
      policy: tokenPolicy,
    })
  })
  afterAll(async () => { await stack?.close() })

  describe('audience-narrowed user tokens', () => {
    it('asks for every audience of the policy at login, as resource parameters', async () => {
      const response = await fetch(`${stack.publicUrl}/bff/login`, { redirect: 'manual' })
      const resources = new URL(response.headers.get('location') ?? '').searchParams.getAll('resource')
      expect(resources.sort()).toEqual([stack.api.audience, BILLING, ORDERS].sort())
    })

    it('sends API A a token for A alone, with the route\'s narrower scopes; API B refuses it, and no other API ever sees it', async () => {
      const user = await signIn(stack.publicUrl)
      const response = await fetch(`${stack.publicUrl}/orders/me`, { headers: { cookie: user.cookie } })
      expect(response.status).toBe(200)
      const received = lastReceived(stack.apis.orders!)!
      expect(received.token).toMatchObject({ audience: ORDERS, sub: 'alice', scopes: ['orders:read'], scheme: 'Bearer' })
      const authorization = received.headers.authorization!

      // The same token, sent by hand to another API (and to the default one), is refused there.
      for (const other of [stack.apis.billing!, stack.apis.catalog!, stack.api]) {
        const replayed = await fetch(`${other.url}/me`, { headers: { authorization } })
        expect(replayed.status, other.name).toBe(401)
      }
      for (const api of [stack.apis.orders!, stack.apis.billing!, stack.apis.catalog!, stack.api]) api.clear()

      // Through every route the user may use, each API only ever got tokens of its own audience.
      for (const path of ['/billing/invoices', '/catalog/me', '/catalog/echo/x', '/status/public/ping', '/maybe/public/ping', '/api/me', '/orders/orders']) {
        expect((await fetch(`${stack.publicUrl}${path}`, { headers: { cookie: user.cookie } })).status, path).toBe(200)
      }
      for (const api of [stack.apis.orders!, stack.apis.billing!, stack.apis.catalog!, stack.api]) {
        for (const request of api.received) {
          const header = request.headers.authorization
          if (header === undefined) continue
          expect(decodeJwt(header.replace(/^\S+ /, '')).aud, `${api.name} ${request.url}`).toBe(api.audience)
        }
      }
    })

    it('keeps the narrowed token: a second request makes no token call', async () => {
      const user = await signIn(stack.publicUrl)
      stack.idp.resetCounters()
      expect((await fetch(`${stack.publicUrl}/orders/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)
      expect((await fetch(`${stack.publicUrl}/orders/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
      expect(stack.idp.tokenCalls.refreshToken).toBe(1)
      expect(await metric(stack, `bff_upstream_token_fetches_total{audience="${ORDERS}",type="user",grant="refresh_token"}`)).toBeGreaterThanOrEqual(1)
      expect(await metric(stack, `bff_upstream_token_cache_hits_total{audience="${ORDERS}",type="user"}`)).toBeGreaterThanOrEqual(1)
    })

    it('exchanges the session\'s token at the IdP (RFC 8693) on a token-exchange route', async () => {
      const user = await signIn(stack.publicUrl)
      stack.idp.resetCounters()
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${stack.publicUrl}/billing/invoices`, { headers: { cookie: user.cookie } })
        expect(response.status).toBe(200)
        expect(await response.json()).toMatchObject({ user: 'alice' })
      }
      expect(stack.idp.tokenCalls).toMatchObject({ tokenExchange: 1, refreshToken: 0 })
      expect(lastReceived(stack.apis.billing!)!.token).toMatchObject({ audience: BILLING, sub: 'alice', clientId: TEST_CLIENT_ID })
    })

    it('sends a session from before the policy named an audience to sign in again, without spending its refresh token', async () => {
      // A session whose login did not ask for the orders API: as if it predated the route.
      const restricted = await startStack({
        apis: APIS,
        store: 'memory',
        gatewayEnv: { OIDC_SCOPES: SCOPES },
        policy: (upstream, apis) => ({
          routes: [{ prefix: '/orders', upstream: apis.orders!.url, token: { audience: ORDERS }, allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }] }],
        }),
      })
      try {
        const user = await signIn(restricted.publicUrl)
        const { sessions } = restricted.gateway.gateway.app
        const session = await sessions.load(user.browser.cookie(restricted.publicUrl, 'bff')?.value)
        await sessions.saveSecrets(session!, { ...session!.secrets, audiences: [] })
        restricted.idp.resetCounters()
        const response = await fetch(`${restricted.publicUrl}/orders/me`, { headers: { cookie: user.cookie } })
        expect(response.status).toBe(401)
        expect(await response.json()).toMatchObject({ error: 'unauthenticated' })
        expect(restricted.idp.tokenCalls.refreshToken).toBe(0)
        expect(restricted.apis.orders!.received).toEqual([])
      } finally {
        await restricted.close()
      }
    })
  })

  describe('client routes', () => {
    it('carry the gateway\'s own token, never a user\'s, fetched once and kept', async () => {
      stack.idp.resetCounters()
      stack.apis.catalog!.clear()
      const anonymous = await fetch(`${stack.publicUrl}/catalog/me`)
      expect(anonymous.status).toBe(200)
      const user = await signIn(stack.publicUrl)
      const signedIn = await fetch(`${stack.publicUrl}/catalog/me`, { headers: { cookie: user.cookie } })
      expect(signedIn.status).toBe(200)
      const withRole = await fetch(`${stack.publicUrl}/catalog/echo/x`, { headers: { cookie: user.cookie } })
      expect(withRole.status).toBe(200)
      expect(stack.apis.catalog!.received).toHaveLength(3)
      for (const request of stack.apis.catalog!.received) {
        expect(request.token).toMatchObject({ audience: CATALOG, sub: TEST_CLIENT_ID, clientId: TEST_CLIENT_ID })
        expect(request.token?.claims.roles).toBeUndefined()
      }
      expect(stack.idp.tokenCalls.clientCredentials).toBeLessThanOrEqual(1)
    })

    it('a rule with roles still needs a session holding one: 401 without a session, nothing forwarded', async () => {
      stack.apis.catalog!.clear()
      const response = await fetch(`${stack.publicUrl}/catalog/echo/x`)
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ error: 'unauthenticated' })
      expect(stack.apis.catalog!.received).toEqual([])
    })
  })

  describe('none routes', () => {
    it('carry no Authorization, with or without a session', async () => {
      const user = await signIn(stack.publicUrl)
      stack.api.clear()
      expect((await fetch(`${stack.publicUrl}/status/public/ping`)).status).toBe(200)
      expect((await fetch(`${stack.publicUrl}/status/public/ping`, { headers: { cookie: user.cookie } })).status).toBe(200)
      expect(stack.api.received).toHaveLength(2)
      for (const request of stack.api.received) {
        expect(request.headers.authorization).toBeUndefined()
        expect(request.headers.cookie).toBeUndefined()
      }
    })

    it('checks the Origin of anonymous unsafe requests, and the CSRF token of those with a session', async () => {
      const user = await signIn(stack.publicUrl)
      stack.api.clear()
      const crossOrigin = await fetch(`${stack.publicUrl}/status/public/x`, { method: 'POST', headers: { origin: 'https://evil.example' } })
      expect(crossOrigin.status).toBe(403)
      expect(await crossOrigin.json()).toMatchObject({ error: 'csrf' })
      const noToken = await fetch(`${stack.publicUrl}/status/public/x`, { method: 'POST', headers: { cookie: user.cookie, origin: stack.publicUrl } })
      expect(noToken.status).toBe(403)
      expect(stack.api.received).toEqual([])

      // Both forwarded (the API itself refuses a POST there, for want of a token).
      await fetch(`${stack.publicUrl}/status/public/x`, { method: 'POST', headers: { origin: stack.publicUrl } })
      await fetch(`${stack.publicUrl}/status/public/x`, {
        method: 'POST', headers: { cookie: user.cookie, origin: stack.publicUrl, 'x-csrf-token': user.csrfToken },
      })
      expect(stack.api.received.map(r => [r.method, r.url, r.headers.authorization])).toEqual([
        ['POST', '/public/x', undefined],
        ['POST', '/public/x', undefined],
      ])
    })
  })

  describe('user-optional routes', () => {
    it('send the user\'s token with a session and none without; anonymous answers keep the upstream\'s caching', async () => {
      const user = await signIn(stack.publicUrl)
      stack.api.clear()
      const anonymous = await fetch(`${stack.publicUrl}/maybe/public/ping`)
      expect(anonymous.status).toBe(200)
      expect(anonymous.headers.get('cache-control')).toBeNull()
      expect(lastReceived(stack.api)!.headers.authorization).toBeUndefined()

      const signedIn = await fetch(`${stack.publicUrl}/maybe/public/ping`, { headers: { cookie: user.cookie } })
      expect(signedIn.status).toBe(200)
      expect(signedIn.headers.get('cache-control')).toBe('no-store')
      const token = decodeJwt(lastReceived(stack.api)!.headers.authorization!.replace(/^Bearer /, ''))
      expect(token).toMatchObject({ sub: 'alice', aud: stack.api.audience })

      expect((await fetch(`${stack.publicUrl}/maybe/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
      const unauthenticated = await fetch(`${stack.publicUrl}/maybe/me`)
      expect(unauthenticated.status).toBe(401)
    })
  })
})

describe('narrowed tokens at expiry, across two instances', () => {
  const TTL_SECONDS = 2
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({
      instances: 2,
      idp: { accessTokenTtl: TTL_SECONDS },
      apis: {
        orders: { ...APIS.orders, accessTokenTtl: TTL_SECONDS },
        billing: { ...APIS.billing, accessTokenTtl: TTL_SECONDS },
      },
      gatewayEnv: { OIDC_SCOPES: SCOPES, TOKEN_REFRESH_SKEW: '0' },
      policy: (_upstream, apis) => ({
        routes: [
          { prefix: '/orders', upstream: apis.orders!.url, token: { audience: ORDERS, scopes: ['orders:read'] }, allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }] },
          { prefix: '/billing', upstream: apis.billing!.url, token: { audience: BILLING }, allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }] },
        ],
      }),
    })
  })
  afterAll(async () => { await stack?.close() })

  it('200 concurrent requests of one session, over two audiences and two instances: one token call per audience, all answered, the grant alive', async () => {
    const user = await signIn(stack.publicUrl)
    const urls = stack.gateways.map(g => g.url)
    const call = (i: number) => fetch(`${urls[i % 2]}/${i % 4 < 2 ? 'orders' : 'billing'}/me`, { headers: { cookie: user.cookie } })
    // Both narrowed tokens obtained once, then left to expire.
    expect((await call(0)).status).toBe(200)
    expect((await call(2)).status).toBe(200)
    const grants = stack.idp.grantsOf('alice')
    await waitFor(TTL_SECONDS * 1000 + 250)

    stack.idp.resetCounters()
    stack.apis.orders!.clear()
    stack.apis.billing!.clear()
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => call(i)))
    expect(responses.map(r => r.status)).toEqual(Array(200).fill(200))
    expect(stack.idp.tokenCalls).toMatchObject({ refreshToken: 2, tokenExchange: 0, clientCredentials: 0 })
    // Each API got 100 requests, all with its one new token.
    for (const api of [stack.apis.orders!, stack.apis.billing!]) {
      expect(api.received).toHaveLength(100)
      expect(new Set(api.received.map(r => r.headers.authorization)).size).toBe(1)
    }
    // No reuse detection fired: the grant is alive, and the next expiry is refreshed as usual.
    expect(stack.idp.grantsOf('alice')).toEqual(grants)
    expect(await metric(stack, 'bff_audit_events_total{event="theft_suspected"')).toBe(0)
    await waitFor(TTL_SECONDS * 1000 + 250)
    expect((await call(1)).status).toBe(200)
    expect((await call(3)).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(4)
    expect(stack.idp.grantsOf('alice')).toEqual(grants)
  })
})
