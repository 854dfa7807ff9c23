/**
 * Several mock APIs side by side (issue 17): each accepts only its own
 * audience, reports the token it accepted, and one demands DPoP-bound tokens
 * with a proof for every request (and a nonce of its own).
 */
import { calculateJwkThumbprint, exportJWK } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstreamApi } from '../../upstream-mock/api.js'
import type { UpstreamApi } from '../../upstream-mock/api.js'
import { startIdentityProvider } from '../../upstream-mock/idp.js'
import type { IdentityProvider } from '../../upstream-mock/idp.js'
import { startUpstreamMock } from '../../upstream-mock/main.js'
import { MockRelyingParty, RP_REDIRECT_URI, createDpopProof } from '../helpers/mock-relying-party.js'
import type { DpopProofClaims } from '../helpers/mock-relying-party.js'

const ORDERS = 'https://orders.test.example'
const BILLING = 'https://billing.test.example'
const SECRET = 'mock-test-client-secret-0123456789abcdef'
const ALICE = { username: 'alice', password: 'alice-password' }

async function thumbprintOf (keys: CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keys.publicKey))
}

function login (...indicators: string[]): URLSearchParams {
  const params = new URLSearchParams({ scope: 'openid offline_access orders:read billing:read' })
  for (const indicator of indicators) params.append('resource', indicator)
  return params
}

describe('upstream mock: several APIs, one with DPoP', () => {
  let idp: IdentityProvider
  let orders: UpstreamApi
  let billing: UpstreamApi
  let rp: MockRelyingParty
  /** The key alice's billing tokens are bound to. */
  let keyPair: CryptoKeyPair
  let ordersToken: string
  let billingToken: string
  let refreshToken: string

  beforeAll(async () => {
    idp = await startIdentityProvider({
      apiAudience: ORDERS,
      apiScopes: ['orders:read'],
      resourceServers: [{ audience: BILLING, scopes: ['billing:read'] }],
      clients: [{ clientId: 'gateway', clientSecret: SECRET, redirectUris: [RP_REDIRECT_URI] }],
    })
    orders = await startUpstreamApi({ issuer: idp.issuer, audience: ORDERS, name: 'orders' })
    billing = await startUpstreamApi({ issuer: idp.issuer, audience: BILLING, name: 'billing', dpop: { required: true, nonce: true } })
    rp = await MockRelyingParty.discover(idp, 'gateway', client.ClientSecretBasic(SECRET))
    keyPair = await client.randomDPoPKeyPair()
    const { tokens } = await rp.signIn(ALICE, { params: login(ORDERS, BILLING) })
    ordersToken = tokens.access_token
    const refreshed = await client.refreshTokenGrant(rp.config, tokens.refresh_token as string, { resource: BILLING }, {
      DPoP: client.getDPoPHandle(rp.config, keyPair),
    })
    billingToken = refreshed.access_token
    refreshToken = refreshed.refresh_token as string
  })

  afterAll(async () => {
    await billing?.close()
    await orders?.close()
    await idp?.close()
  })

  async function call (api: UpstreamApi, path: string, headers: Record<string, string>, method = 'GET') {
    const response = await fetch(`${api.url}${path}`, { method, headers })
    return { response, body: await response.json() as Record<string, unknown> }
  }

  async function withProof (path: string, claims: Partial<DpopProofClaims> = {}, token = billingToken, signer = keyPair) {
    const proof = await createDpopProof(signer, {
      htm: 'GET',
      htu: `${billing.url}${path.split('?')[0]}`,
      accessToken: token,
      nonce: billing.dpopNonce as string,
      ...claims,
    })
    return call(billing, path, { authorization: `DPoP ${token}`, dpop: proof })
  }

  describe('audiences', () => {
    it('accepts at each API only a token for its own audience', async () => {
      expect((await call(orders, '/orders', { authorization: `Bearer ${ordersToken}` })).response.status).toBe(200)
      const wrongApi = await call(billing, '/invoices', { authorization: `Bearer ${ordersToken}` })
      expect(wrongApi.response.status).toBe(401)

      expect((await withProof('/invoices')).response.status).toBe(200)
      const elsewhere = await call(orders, '/orders', { authorization: `DPoP ${billingToken}`, dpop: await createDpopProof(keyPair, { htm: 'GET', htu: `${orders.url}/orders`, accessToken: billingToken }) })
      expect(elsewhere.response.status).toBe(401)
      expect(String(elsewhere.body.message)).toMatch(/aud/)
    })

    it('reports the accepted token in /me and /echo, and records it', async () => {
      const me = await call(orders, '/me', { authorization: `Bearer ${ordersToken}` })
      expect(me.body.token).toEqual({ api: 'orders', scheme: 'Bearer', sub: 'alice', clientId: 'gateway', audience: ORDERS, scopes: ['orders:read'] })
      expect(me.body.claims).toMatchObject({ aud: ORDERS, scope: 'orders:read' })

      orders.clear()
      const echo = await call(orders, '/echo/x?y=1', { authorization: `Bearer ${ordersToken}`, 'x-test': 'kept' })
      expect(echo.body).toMatchObject({ url: '/echo/x?y=1', headers: { 'x-test': 'kept' }, token: { api: 'orders', audience: ORDERS } })
      expect(orders.received[0]?.token).toMatchObject({ scheme: 'Bearer', sub: 'alice', claims: { aud: ORDERS } })

      const invoices = await withProof('/invoices')
      expect(invoices.body).toMatchObject({ user: 'alice', invoices: expect.any(Array) })
      const billingMe = await withProof('/me')
      expect(billingMe.body.token).toEqual({
        api: 'billing', scheme: 'DPoP', sub: 'alice', clientId: 'gateway', audience: BILLING, scopes: ['billing:read'], cnf: { jkt: await thumbprintOf(keyPair) },
      })
    })
  })

  describe('DPoP (RFC 9449) at the API', () => {
    it('hands out its nonce with 401 use_dpop_nonce, then accepts a proof carrying it', async () => {
      const first = await withProof('/me', { nonce: undefined })
      expect(first.response.status).toBe(401)
      expect(first.body).toMatchObject({ error: 'use_dpop_nonce' })
      expect(first.response.headers.get('www-authenticate')).toMatch(/^DPoP error="use_dpop_nonce"/)
      const nonce = first.response.headers.get('dpop-nonce')
      expect(nonce).toBe(billing.dpopNonce)
      expect((await withProof('/me', { nonce: nonce as string })).response.status).toBe(200)

      const rotated = billing.rotateDpopNonce()
      const stale = await withProof('/me', { nonce: nonce as string })
      expect(stale.body).toMatchObject({ error: 'use_dpop_nonce' })
      expect(stale.response.headers.get('dpop-nonce')).toBe(rotated)
    })

    it('refuses a bearer token, and a DPoP-bound token sent as one, anywhere', async () => {
      const bearer = await call(billing, '/me', { authorization: `Bearer ${ordersToken}` })
      expect(bearer.response.status).toBe(401)
      expect(bearer.response.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/)
      const missing = await call(billing, '/me', {})
      expect(missing.response.headers.get('www-authenticate')).toMatch(/^DPoP algs="/)

      // An API that does not require DPoP still knows a bound token from a bearer one.
      const lenient = await startUpstreamApi({ issuer: idp.issuer, audience: BILLING })
      try {
        const bound = await call(lenient, '/me', { authorization: `Bearer ${billingToken}` })
        expect(bound.response.status).toBe(401)
        expect(bound.body).toMatchObject({ error: 'invalid_token', message: expect.stringMatching(/DPoP-bound/) })
        const proof = await createDpopProof(keyPair, { htm: 'GET', htu: `${lenient.url}/me`, accessToken: billingToken })
        expect((await call(lenient, '/me', { authorization: `DPoP ${billingToken}`, dpop: proof })).response.status).toBe(200)
      } finally {
        await lenient.close()
      }
    })

    const badProofs: Array<[string, () => Partial<DpopProofClaims>, RegExp]> = [
      ['another method', () => ({ htm: 'POST' }), /htm/],
      ['another path', () => ({ htu: `${billing.url}/orders` }), /htu/],
      ['another origin', () => ({ htu: `http://localhost:${billing.port}/me` }), /htu/],
      ['an iat 2 minutes old', () => ({ iat: Math.floor(Date.now() / 1000) - 120 }), /iat/],
      ['an iat 2 minutes ahead', () => ({ iat: Math.floor(Date.now() / 1000) + 120 }), /iat/],
      ['the hash of another token', () => ({ accessToken: ordersToken }), /ath/],
      ['no ath', () => ({ accessToken: undefined }), /ath/],
    ]
    it.each(badProofs)('refuses a proof with %s as invalid_dpop_proof', async (_name, claims, message) => {
      const result = await withProof('/me', claims())
      expect(result.response.status).toBe(401)
      expect(result.body).toMatchObject({ error: 'invalid_dpop_proof', message: expect.stringMatching(message) })
      expect(result.response.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof"/)
    })

    it('accepts a proof whose htu carries the query, and refuses it replayed', async () => {
      const proof = await createDpopProof(keyPair, { htm: 'GET', htu: `${billing.url}/echo/a?b=1`, accessToken: billingToken, nonce: billing.dpopNonce as string })
      const headers = { authorization: `DPoP ${billingToken}`, dpop: proof }
      expect((await call(billing, '/echo/a?b=2', headers)).response.status).toBe(200)
      const replayed = await call(billing, '/echo/a?b=2', headers)
      expect(replayed.response.status).toBe(401)
      expect(replayed.body).toMatchObject({ error: 'invalid_dpop_proof', message: expect.stringMatching(/replayed/) })
    })

    it('refuses a proof by a key the token is not bound to, a forged one, and two at once', async () => {
      const otherKey = await client.randomDPoPKeyPair()
      expect((await withProof('/me', {}, billingToken, otherKey)).body).toMatchObject({ error: 'invalid_dpop_proof', message: expect.stringMatching(/not bound/) })

      const proof = await createDpopProof(keyPair, { htm: 'GET', htu: `${billing.url}/me`, accessToken: billingToken, nonce: billing.dpopNonce as string })
      const forged = `${proof.slice(0, proof.lastIndexOf('.'))}.${Buffer.from('forged').toString('base64url')}`
      expect((await call(billing, '/me', { authorization: `DPoP ${billingToken}`, dpop: forged })).body).toMatchObject({ error: 'invalid_dpop_proof' })

      const twice = await fetch(`${billing.url}/me`, { headers: [['authorization', `DPoP ${billingToken}`], ['dpop', proof], ['dpop', proof]] })
      expect(twice.status).toBe(401)
      expect(await twice.json()).toMatchObject({ error: 'invalid_dpop_proof', message: expect.stringMatching(/more than one/) })

      const unbound = await call(billing, '/me', { authorization: `DPoP ${ordersToken}`, dpop: proof })
      expect(unbound.body).toMatchObject({ error: 'invalid_token' })
    })

    it('serves a standard DPoP client, which follows the nonce by itself', async () => {
      billing.rotateDpopNonce()
      const refreshed = await client.refreshTokenGrant(rp.config, refreshToken, { resource: BILLING }, { DPoP: client.getDPoPHandle(rp.config, keyPair) })
      refreshToken = refreshed.refresh_token as string
      const handle = client.getDPoPHandle(rp.config, keyPair)
      // The first answer is the nonce challenge; openid-client retries once with the nonce.
      billing.clear()
      const response = await client.fetchProtectedResource(rp.config, refreshed.access_token, new URL(`${billing.url}/me`), 'GET', undefined, undefined, { DPoP: handle })
      expect(response.status).toBe(200)
      expect(billing.received).toHaveLength(2)
      expect(await response.json()).toMatchObject({ token: { scheme: 'DPoP', sub: 'alice' } })
    })
  })

  it('reports no server errors at the IdP', () => {
    expect(idp.serverErrors).toEqual([])
  })
})

describe('upstream mock: the demo\'s two APIs (main.ts)', () => {
  it('runs orders and billing, each with its own audience and scopes, and the IdP with acr on', async () => {
    const mock = await startUpstreamMock({
      IDP_PORT: '0',
      API_PORT: '0',
      API_AUDIENCE: ORDERS,
      API_SCOPES: 'orders:read orders:write',
      BILLING_API_PORT: '0',
      BILLING_API_AUDIENCE: BILLING,
      GATEWAY_PUBLIC_URL: 'http://127.0.0.1:9',
      GATEWAY_CLIENT_SECRET: SECRET,
    })
    try {
      expect(mock.billingApi?.audience).toBe(BILLING)
      expect(mock.idp.resourceServers.map(({ audience, scopes }) => ({ audience, scopes }))).toEqual([
        { audience: ORDERS, scopes: ['orders:read', 'orders:write'] },
        { audience: BILLING, scopes: ['billing:read', 'billing:write'] },
      ])
      expect(mock.idp.mfaCode).toBe('123456')
      const demo = await MockRelyingParty.discover(mock.idp, 'bff-gateway', client.ClientSecretBasic(SECRET), 'http://127.0.0.1:9/bff/callback')
      const catalog = await client.clientCredentialsGrant(demo.config, { resource: BILLING, scope: 'billing:read' })
      const billingApi = mock.billingApi as UpstreamApi
      expect((await fetch(`${billingApi.url}/invoices`, { headers: { authorization: `Bearer ${catalog.access_token}` } })).status).toBe(200)
      expect((await fetch(`${mock.api.url}/orders`, { headers: { authorization: `Bearer ${catalog.access_token}` } })).status).toBe(401)
    } finally {
      await mock.close()
    }
  })

  it('keeps running a single API by default', async () => {
    const mock = await startUpstreamMock({ IDP_PORT: '0', API_PORT: '0', GATEWAY_PUBLIC_URL: 'http://127.0.0.1:9' })
    try {
      expect(mock.billingApi).toBeUndefined()
      expect(mock.idp.resourceServers).toEqual([{ audience: 'http://127.0.0.1:4001', scopes: ['api'], accessTokenTtl: 300 }])
    } finally {
      await mock.close()
    }
  })
})
