/**
 * The mock IdP's tokens per API (issue 17): resource indicators with scopes per
 * API, DPoP, client credentials, client authentication methods, PAR and token
 * exchange, driven by a real relying party (openid-client) over HTTP.
 */
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, startIdentityProvider } from '../../upstream-mock/idp.js'
import type { IdentityProvider, IdpClient } from '../../upstream-mock/idp.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { MockRelyingParty, RP_REDIRECT_URI, createDpopProof } from '../helpers/mock-relying-party.js'

const ORDERS = 'https://orders.test.example'
const BILLING = 'https://billing.test.example'
const CATALOG = 'https://catalog.test.example'
const SECRET = 'mock-test-client-secret-0123456789abcdef'
const ALICE = { username: 'alice', password: 'alice-password' }
const USER_SCOPE = 'openid profile email offline_access orders:read orders:write billing:read'

function registration (clientId: string, extra: Partial<IdpClient> = {}): IdpClient {
  return { clientId, clientSecret: SECRET, redirectUris: [RP_REDIRECT_URI], ...extra }
}

function resources (...indicators: string[]): URLSearchParams {
  const params = new URLSearchParams({ scope: USER_SCOPE })
  for (const indicator of indicators) params.append('resource', indicator)
  return params
}

async function thumbprintOf (keyPair: CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keyPair.publicKey))
}

async function dpopKey (rp: MockRelyingParty) {
  const keyPair = await client.randomDPoPKeyPair()
  return { handle: client.getDPoPHandle(rp.config, keyPair), thumbprint: await thumbprintOf(keyPair) }
}

describe('upstream mock: tokens per API', () => {
  let idp: IdentityProvider
  let rp: MockRelyingParty
  let jwtClientKey: CryptoKey

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    jwtClientKey = privateKey
    idp = await startIdentityProvider({
      apiAudience: ORDERS,
      resourceServers: [
        { audience: ORDERS, scopes: ['orders:read', 'orders:write'] },
        { audience: BILLING, scopes: ['billing:read', 'billing:write'], accessTokenTtl: 60 },
        { audience: CATALOG, scopes: ['catalog:read'] },
      ],
      clients: [
        registration('gateway', { clientCredentials: true, tokenExchange: true }),
        registration('other-gateway', { tokenExchange: true }),
        registration('plain'),
        registration('post-client', { tokenEndpointAuthMethod: 'client_secret_post' }),
        {
          clientId: 'jwt-client',
          redirectUris: [RP_REDIRECT_URI],
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: { keys: [{ ...await exportJWK(publicKey), alg: 'ES256' }] },
          clientCredentials: true,
        },
        registration('par-client', { requirePar: true }),
        registration('dpop-client', { dpopBoundAccessTokens: true }),
        registration('auth-time-client', { requireAuthTime: true }),
      ],
    })
    rp = await MockRelyingParty.discover(idp, 'gateway', client.ClientSecretBasic(SECRET))
  })

  afterAll(async () => {
    await idp?.close()
  })

  beforeEach(() => {
    idp.setClockSkew(0)
    for (const user of ['alice', 'bob']) idp.enableUser(user)
  })

  describe('resource indicators (RFC 8707)', () => {
    it('lists every API with its audience and scopes, the default one first', () => {
      expect(idp.resourceServers.map(({ audience, scopes }) => ({ audience, scopes }))).toEqual([
        { audience: ORDERS, scopes: ['orders:read', 'orders:write'] },
        { audience: BILLING, scopes: ['billing:read', 'billing:write'] },
        { audience: CATALOG, scopes: ['catalog:read'] },
      ])
    })

    it('gives the default API\'s token when the code exchange names no resource', async () => {
      const { tokens } = await rp.signIn(ALICE, { params: resources(ORDERS, BILLING) })
      const claims = decodeJwt(tokens.access_token)
      expect(claims).toMatchObject({ aud: ORDERS, sub: 'alice', scope: 'orders:read orders:write', roles: ['user'] })
    })

    it('issues a token for one granted resource: that audience only, its granted scopes only', async () => {
      const { tokens } = await rp.signIn(ALICE, { params: resources(ORDERS, BILLING), tokenParams: { resource: BILLING } })
      expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: BILLING, scope: 'billing:read' })
      expect(tokens.expires_in).toBe(60)

      const orders = await client.refreshTokenGrant(rp.config, tokens.refresh_token as string, { resource: ORDERS, scope: 'orders:read' })
      expect(decodeJwt(orders.access_token)).toMatchObject({ aud: ORDERS, scope: 'orders:read' })

      const billing = await client.refreshTokenGrant(rp.config, orders.refresh_token as string, { resource: BILLING })
      // billing:write is a scope of the API, but was never asked for at login.
      expect(decodeJwt(billing.access_token)).toMatchObject({ aud: BILLING, scope: 'billing:read' })
    })

    it('refuses at the authorization endpoint a resource that is no API of the IdP', async () => {
      const request = await rp.authorizationRequest({ params: resources('https://unknown.test.example') })
      const { callbackUrl } = await rp.follow(new HttpBrowser(), request.url)
      expect(callbackUrl?.searchParams.get('error')).toBe('invalid_target')
    })

    it('(trap) fails a refresh for an ungranted resource only after rotating: the grant is lost', async () => {
      const { tokens } = await rp.signIn(ALICE, { params: resources(ORDERS) })
      const refreshToken = tokens.refresh_token as string
      const grants = idp.grantsOf('alice')
      await expect(client.refreshTokenGrant(rp.config, refreshToken, { resource: BILLING }))
        .rejects.toMatchObject({ error: 'invalid_target' })
      // The refresh token was used up by the failed request, and reusing it ends the whole grant.
      await expect(client.refreshTokenGrant(rp.config, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' })
      expect(idp.grantsOf('alice')).toHaveLength(grants.length - 1)
    })
  })

  describe('DPoP (RFC 9449)', () => {
    it('binds the tokens of the code exchange and of each refresh to the proof\'s key', async () => {
      const key = await dpopKey(rp)
      const { tokens } = await rp.signIn(ALICE, { params: resources(ORDERS, BILLING), dpop: key.handle })
      expect(tokens.token_type).toBe('dpop')
      expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: key.thumbprint })

      const refreshed = await client.refreshTokenGrant(rp.config, tokens.refresh_token as string, { resource: BILLING }, { DPoP: key.handle })
      expect(refreshed.token_type).toBe('dpop')
      expect(decodeJwt(refreshed.access_token)).toMatchObject({ aud: BILLING, cnf: { jkt: key.thumbprint } })

      // A confidential client's refresh token is not bound: without a proof, a bearer token.
      const bearer = await client.refreshTokenGrant(rp.config, refreshed.refresh_token as string)
      expect(bearer.token_type).toBe('bearer')
      expect(decodeJwt(bearer.access_token).cnf).toBeUndefined()
    })

    it('advertises DPoP and honours dpop_jkt at the authorization endpoint', async () => {
      expect(rp.config.serverMetadata().dpop_signing_alg_values_supported).toContain('ES256')
      const bound = await dpopKey(rp)
      const other = await dpopKey(rp)
      await expect(rp.signIn(ALICE, { params: { dpop_jkt: bound.thumbprint }, dpop: other.handle }))
        .rejects.toMatchObject({ error: 'invalid_grant' })
      const { tokens } = await rp.signIn(ALICE, { params: { dpop_jkt: bound.thumbprint }, dpop: bound.handle })
      expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: bound.thumbprint })
    })

    it('refuses tokens without a proof to a client registered for DPoP-bound tokens only', async () => {
      const dpopOnly = await MockRelyingParty.discover(idp, 'dpop-client', client.ClientSecretBasic(SECRET))
      await expect(dpopOnly.signIn(ALICE)).rejects.toMatchObject({ error: 'invalid_grant' })
      const key = await dpopKey(dpopOnly)
      const { tokens } = await dpopOnly.signIn(ALICE, { dpop: key.handle })
      expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: key.thumbprint })
    })
  })

  describe('client credentials', () => {
    it('issues the client its own token for the API it names, with that API\'s scopes', async () => {
      const tokens = await client.clientCredentialsGrant(rp.config, { resource: CATALOG, scope: 'catalog:read orders:read' })
      const claims = decodeJwt(tokens.access_token)
      expect(claims).toMatchObject({ iss: idp.issuer, aud: CATALOG, sub: 'gateway', client_id: 'gateway', scope: 'catalog:read' })
      expect(claims.roles).toBeUndefined()
      expect(tokens.refresh_token).toBeUndefined()
    })

    it('issues a token for the default API when no resource is named, and DPoP-binds on request', async () => {
      const key = await dpopKey(rp)
      const tokens = await client.clientCredentialsGrant(rp.config, {}, { DPoP: key.handle })
      expect(tokens.token_type).toBe('dpop')
      expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: ORDERS, cnf: { jkt: key.thumbprint } })
    })

    it('refuses a client not registered for the grant', async () => {
      const plain = await MockRelyingParty.discover(idp, 'plain', client.ClientSecretBasic(SECRET))
      await expect(client.clientCredentialsGrant(plain.config, { resource: CATALOG })).rejects.toMatchObject({ error: 'invalid_request' })
    })

    it('counts client credentials and token exchange calls apart', async () => {
      idp.resetCounters()
      await client.clientCredentialsGrant(rp.config, { resource: CATALOG })
      expect(idp.tokenCalls).toEqual({ authorizationCode: 0, refreshToken: 0, clientCredentials: 1, tokenExchange: 0, other: 0 })
    })
  })

  describe('client authentication', () => {
    it('authenticates a private_key_jwt client by its signed assertion', async () => {
      const jwtClient = await MockRelyingParty.discover(idp, 'jwt-client', client.PrivateKeyJwt(jwtClientKey))
      const tokens = await client.clientCredentialsGrant(jwtClient.config, { resource: CATALOG })
      expect(decodeJwt(tokens.access_token)).toMatchObject({ client_id: 'jwt-client', aud: CATALOG })
      const { tokens: userTokens } = await jwtClient.signIn(ALICE)
      expect(userTokens.claims()?.sub).toBe('alice')

      const { privateKey: wrongKey } = await generateKeyPair('ES256')
      const impostor = await MockRelyingParty.discover(idp, 'jwt-client', client.PrivateKeyJwt(wrongKey))
      await expect(client.clientCredentialsGrant(impostor.config, { resource: CATALOG })).rejects.toMatchObject({ error: 'invalid_client' })
      const withSecret = await MockRelyingParty.discover(idp, 'jwt-client', client.ClientSecretBasic(SECRET))
      // A refused Basic authentication comes as a WWW-Authenticate challenge.
      await expect(client.clientCredentialsGrant(withSecret.config))
        .rejects.toMatchObject({ status: 401, cause: [{ parameters: { error: 'invalid_client' } }] })
    })

    it('authenticates a client_secret_post client by the secret in the form', async () => {
      const postClient = await MockRelyingParty.discover(idp, 'post-client', client.ClientSecretPost(SECRET))
      const { tokens } = await postClient.signIn(ALICE)
      expect(tokens.claims()?.aud).toBe('post-client')
      const wrong = await MockRelyingParty.discover(idp, 'post-client', client.ClientSecretPost('not-the-secret'))
      await expect(wrong.signIn(ALICE)).rejects.toMatchObject({ status: 401 })
    })
  })

  describe('pushed authorization requests (RFC 9126)', () => {
    it('signs in through a pushed request', async () => {
      const { tokens, idpStep } = await rp.signIn(ALICE, { par: true, params: resources(ORDERS, BILLING), tokenParams: { resource: BILLING } })
      expect(new URL(idpStep.chain[0]?.url ?? '').searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/)
      expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: BILLING, scope: 'billing:read' })
    })

    it('refuses a plain authorization request from a client that must push', async () => {
      const parOnly = await MockRelyingParty.discover(idp, 'par-client', client.ClientSecretBasic(SECRET))
      const plain = await parOnly.authorizationRequest()
      const { callbackUrl } = await parOnly.follow(new HttpBrowser(), plain.url)
      expect(callbackUrl?.searchParams.get('error')).toBe('invalid_request')
      expect(callbackUrl?.searchParams.get('error_description')).toMatch(/pushed authorization request/i)
      const { tokens } = await parOnly.signIn(ALICE, { par: true })
      expect(tokens.claims()?.sub).toBe('alice')
    })
  })

  describe('ID tokens without acr', () => {
    it('carry no acr, and auth_time only for a client that requires it or when max_age asks', async () => {
      const { tokens, browser } = await rp.signIn(ALICE)
      expect(tokens.claims()?.acr).toBeUndefined()
      expect(tokens.claims()?.auth_time).toBeUndefined()
      const aged = await rp.signIn(ALICE, { browser, params: { max_age: '3600' } })
      expect(aged.tokens.claims()?.auth_time).toEqual(expect.any(Number))
      const requiring = await MockRelyingParty.discover(idp, 'auth-time-client', client.ClientSecretBasic(SECRET))
      expect((await requiring.signIn(ALICE)).tokens.claims()?.auth_time).toEqual(expect.any(Number))
    })
  })

  describe('token exchange (RFC 8693)', () => {
    async function exchange (subjectToken: string, params: Record<string, string>, options?: client.DPoPOptions, as = rp) {
      return client.genericGrantRequest(as.config, TOKEN_EXCHANGE_GRANT, {
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        ...params,
      }, options)
    }

    it('trades the user\'s access token for one of another audience, same sub, narrowed scopes', async () => {
      const { tokens } = await rp.signIn(ALICE)
      idp.resetCounters()
      const exchanged = await exchange(tokens.access_token, { resource: BILLING, scope: 'billing:read orders:write unknown' })
      expect(exchanged.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
      expect(exchanged.token_type).toBe('bearer')
      expect(exchanged.refresh_token).toBeUndefined()
      expect(exchanged.expires_in).toBe(60)
      expect(decodeJwt(exchanged.access_token)).toMatchObject({
        iss: idp.issuer, aud: BILLING, sub: 'alice', client_id: 'gateway', scope: 'billing:read', roles: ['user'],
      })
      expect(idp.tokenCalls.tokenExchange).toBe(1)

      const byAudience = await exchange(tokens.access_token, { audience: CATALOG })
      expect(decodeJwt(byAudience.access_token)).toMatchObject({ aud: CATALOG, scope: 'catalog:read' })
    })

    it('binds the exchanged token to a DPoP key', async () => {
      const { tokens } = await rp.signIn(ALICE)
      const key = await dpopKey(rp)
      const exchanged = await exchange(tokens.access_token, { resource: BILLING }, { DPoP: key.handle })
      expect(exchanged.token_type).toBe('dpop')
      expect(decodeJwt(exchanged.access_token)).toMatchObject({ aud: BILLING, scope: 'billing:read billing:write', cnf: { jkt: key.thumbprint } })
    })

    it('refuses an invalid, expired or foreign subject token with invalid_request', async () => {
      const { tokens } = await rp.signIn(ALICE)
      const [header, payload] = tokens.access_token.split('.')
      await expect(exchange(`${header}.${payload}.${Buffer.from('forged').toString('base64url')}`, { resource: BILLING }))
        .rejects.toMatchObject({ error: 'invalid_request' })
      await expect(exchange('not-a-token', { resource: BILLING })).rejects.toMatchObject({ error: 'invalid_request' })

      // An access token issued an hour ago, by a raw refresh (openid-client would refuse its ID token).
      idp.setClockSkew(-3600)
      const expired = await fetch(`${idp.issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`gateway:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string }),
      }).then(response => response.json() as Promise<{ access_token: string }>)
      idp.setClockSkew(0)
      expect((decodeJwt(expired.access_token).exp ?? Infinity) * 1000).toBeLessThan(Date.now())
      await expect(exchange(expired.access_token, { resource: BILLING })).rejects.toMatchObject({ error: 'invalid_request' })

      const other = await MockRelyingParty.discover(idp, 'other-gateway', client.ClientSecretBasic(SECRET))
      await expect(exchange(tokens.access_token, { resource: BILLING }, undefined, other))
        .rejects.toMatchObject({ error: 'invalid_request', error_description: 'subject_token was issued to another client' })
    })

    it('refuses a disabled user\'s token with invalid_grant, an unknown audience with invalid_target', async () => {
      const { tokens } = await rp.signIn(ALICE)
      await expect(exchange(tokens.access_token, { resource: 'https://unknown.test.example' })).rejects.toMatchObject({ error: 'invalid_target' })
      await expect(exchange(tokens.access_token, {})).rejects.toMatchObject({ error: 'invalid_target' })
      await expect(exchange(tokens.access_token, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', resource: BILLING }))
        .rejects.toMatchObject({ error: 'invalid_request' })
      idp.disableUser('alice')
      await expect(exchange(tokens.access_token, { resource: BILLING })).rejects.toMatchObject({ error: 'invalid_grant' })
    })

    it('refuses a client not registered for token exchange', async () => {
      const plain = await MockRelyingParty.discover(idp, 'plain', client.ClientSecretBasic(SECRET))
      const { tokens } = await plain.signIn(ALICE)
      await expect(exchange(tokens.access_token, { resource: BILLING }, undefined, plain)).rejects.toMatchObject({ error: 'invalid_request' })
    })
  })

  it('reports no server errors', () => {
    expect(idp.serverErrors).toEqual([])
  })
})

describe('upstream mock: DPoP nonces at the IdP', () => {
  let idp: IdentityProvider

  beforeAll(async () => {
    idp = await startIdentityProvider({ dpopNonce: true, clients: [registration('gateway', { clientCredentials: true })] })
  })

  afterAll(async () => {
    await idp?.close()
  })

  it('answers use_dpop_nonce with a DPoP-Nonce, and accepts a proof carrying it', async () => {
    const rp = await MockRelyingParty.discover(idp, 'gateway', client.ClientSecretBasic(SECRET))
    const keyPair = await client.randomDPoPKeyPair()
    const tokenUrl = `${idp.issuer}/token`
    const request = async (proof: string) => fetch(tokenUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`gateway:${SECRET}`).toString('base64')}`, dpop: proof },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    })
    const first = await request(await createDpopProof(keyPair, { htm: 'POST', htu: tokenUrl }))
    expect(first.status).toBe(400)
    expect(await first.json()).toMatchObject({ error: 'use_dpop_nonce' })
    const nonce = first.headers.get('dpop-nonce')
    expect(nonce).toBeTruthy()
    const second = await request(await createDpopProof(keyPair, { htm: 'POST', htu: tokenUrl, nonce: nonce as string }))
    expect(second.status).toBe(200)
    expect(await second.json()).toMatchObject({ token_type: 'DPoP' })
    idp.resetCounters()

    const handle = client.getDPoPHandle(rp.config, keyPair)
    // openid-client retries once with the nonce it was given.
    const tokens = await client.clientCredentialsGrant(rp.config, {}, { DPoP: handle })
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: await thumbprintOf(keyPair) })
    expect(idp.tokenCalls.clientCredentials).toBe(2)
    expect(idp.serverErrors).toEqual([])
  })
})
