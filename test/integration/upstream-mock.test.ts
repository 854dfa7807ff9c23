/**
 * The upstream mock on its own (no gateway): a real OIDC relying party
 * (openid-client) and the test browser against the mock IdP and API.
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startUpstreamApi } from '../../upstream-mock/api.js'
import type { UpstreamApi } from '../../upstream-mock/api.js'
import { startIdentityProvider } from '../../upstream-mock/idp.js'
import type { IdentityProvider } from '../../upstream-mock/idp.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { authenticateAtIdp, capture, findLoginForm, logoutAtIdp, submitCredentials } from '../helpers/login-flow.js'

const CLIENT_ID = 'test-gateway'
const CLIENT_SECRET = 'test-gateway-secret-0123456789abcdef'
const API_AUDIENCE = 'https://api.test.example'
const SCOPE = 'openid profile email offline_access'

interface LogoutReceiver {
  url: string
  tokens: string[]
  server: Server
}

async function startLogoutReceiver (): Promise<LogoutReceiver> {
  const tokens: string[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token')
      if (token) tokens.push(token)
      res.writeHead(200)
      res.end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/bff/backchannel-logout`, tokens, server }
}

describe('upstream mock: identity provider and API', () => {
  // The relying party's callback; nothing listens there, the flow stops before visiting it.
  const redirectUri = 'http://127.0.0.1:9/bff/callback'
  let idp: IdentityProvider
  let api: UpstreamApi
  let receiver: LogoutReceiver
  let config: client.Configuration

  beforeAll(async () => {
    receiver = await startLogoutReceiver()
    idp = await startIdentityProvider({
      apiAudience: API_AUDIENCE,
      accessTokenTtl: 5,
      clients: [{
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: [redirectUri],
        postLogoutRedirectUris: ['http://127.0.0.1:9/'],
        backchannelLogoutUri: receiver.url,
      }],
    })
    api = await startUpstreamApi({ issuer: idp.issuer, audience: API_AUDIENCE })
    config = await client.discovery(new URL(idp.issuer), CLIENT_ID, undefined, client.ClientSecretBasic(CLIENT_SECRET), {
      execute: [client.allowInsecureRequests],
    })
  })

  afterAll(async () => {
    await api?.close()
    await idp?.close()
    await new Promise(resolve => receiver?.server.close(resolve))
  })

  beforeEach(() => {
    idp.resetCounters()
    idp.setTokenEndpointDelay(0)
    idp.setClockSkew(0)
  })

  async function authorizationRequest (extra: Record<string, string> = {}) {
    const codeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    })
    return { url: url.href, checks: { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true } }
  }

  async function signIn (username: string, password: string, browser = new HttpBrowser(), extra: Record<string, string> = {}) {
    const request = await authorizationRequest(extra)
    const idpStep = await authenticateAtIdp(browser, request.url, redirectUri, { username, password })
    const tokens = await client.authorizationCodeGrant(config, new URL(idpStep.callbackUrl), request.checks)
    return { browser, tokens, idpStep }
  }

  async function callApi (path: string, accessToken: string | undefined, init: RequestInit = {}) {
    const headers = new Headers(init.headers)
    if (accessToken) headers.set('authorization', `Bearer ${accessToken}`)
    const response = await fetch(`${api.url}${path}`, { ...init, headers })
    return { response, body: await response.json() as Record<string, unknown> }
  }

  describe('discovery', () => {
    it('advertises PKCE S256, revocation, end-session and back-channel logout with sid', () => {
      const metadata = config.serverMetadata()
      expect(metadata.issuer).toBe(idp.issuer)
      expect(metadata.code_challenge_methods_supported).toEqual(['S256'])
      expect(metadata.revocation_endpoint).toBe(`${idp.issuer}/token/revocation`)
      expect(metadata.end_session_endpoint).toBe(`${idp.issuer}/session/end`)
      expect(metadata.backchannel_logout_supported).toBe(true)
      expect(metadata.backchannel_logout_session_supported).toBe(true)
      expect(metadata.jwks_uri).toBe(idp.jwksUri)
    })
  })

  describe('login', () => {
    it('issues a refresh token and a JWT access token for the API without prompt=consent', async () => {
      const { tokens, idpStep } = await signIn('alice', 'alice-password')
      expect(idpStep.askedForCredentials).toBe(true)
      expect(tokens.refresh_token).toBeTruthy()
      expect(tokens.expires_in).toBe(5)
      expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'RS256' })
      const accessClaims = decodeJwt(tokens.access_token)
      expect(accessClaims).toMatchObject({ iss: idp.issuer, aud: API_AUDIENCE, sub: 'alice', client_id: CLIENT_ID, roles: ['user'] })
      expect((accessClaims.exp ?? 0) - (accessClaims.iat ?? 0)).toBe(5)
    })

    it('puts name, email, roles and sid in the ID token, and honours the nonce', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const claims = tokens.claims()
      expect(claims).toMatchObject({
        sub: 'alice',
        name: 'Alice Example',
        email: 'alice@example.com',
        roles: ['user'],
        aud: CLIENT_ID,
      })
      expect(typeof claims?.sid).toBe('string')
      expect(typeof claims?.nonce).toBe('string')
    })

    it('refuses an authorization request without PKCE', async () => {
      const url = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: SCOPE, state: 'x' })
      const response = await new HttpBrowser().fetch(url)
      const location = new URL(response.headers.get('location') ?? '')
      expect(`${location.origin}${location.pathname}`).toBe(redirectUri)
      expect(location.searchParams.get('error')).toBe('invalid_request')
      expect(location.searchParams.get('state')).toBe('x')
    })

    it('re-renders the login form with an error on a wrong password', async () => {
      const browser = new HttpBrowser()
      const { url } = await authorizationRequest()
      let page = await capture(browser, url)
      while (page.location) page = await capture(browser, page.location)
      expect(page.status).toBe(200)
      expect(findLoginForm(page)).toBeDefined()

      const result = await submitCredentials(browser, page, redirectUri, { username: 'alice', password: 'wrong' })
      expect(result.callbackUrl).toBeUndefined()
      expect(result.response.status).toBe(401)
      expect(result.response.body).toContain('Invalid username or password')
      expect(findLoginForm(result.response)?.fields.username).toBe('alice')

      await expect(authenticateAtIdp(browser, url, redirectUri, { username: 'alice', password: 'nope' }))
        .rejects.toThrow(/refused the credentials/)
    })

    it('reuses the IdP session, but asks again with prompt=login', async () => {
      const { browser } = await signIn('alice', 'alice-password')
      const silent = await signIn('alice', 'unused', browser)
      expect(silent.idpStep.askedForCredentials).toBe(false)
      const forced = await signIn('alice', 'alice-password', browser, { prompt: 'login' })
      expect(forced.idpStep.askedForCredentials).toBe(true)
    })
  })

  describe('refresh', () => {
    it('rotates the refresh token on every use, and reuse of a used one revokes the whole grant', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const first = tokens.refresh_token as string
      const refreshed = await client.refreshTokenGrant(config, first)
      const second = refreshed.refresh_token as string
      expect(second).toBeTruthy()
      expect(second).not.toBe(first)
      expect(decodeJwt(refreshed.access_token)).toMatchObject({ aud: API_AUDIENCE, roles: ['user'] })

      await expect(client.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' })
      await expect(client.refreshTokenGrant(config, second)).rejects.toMatchObject({ error: 'invalid_grant' })
    })

    it('keeps the API audience when the refresh request names the resource', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string, { resource: API_AUDIENCE })
      expect(decodeJwt(refreshed.access_token).aud).toBe(API_AUDIENCE)
    })

    it('counts token endpoint calls by grant type, failed ones included', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      await client.refreshTokenGrant(config, tokens.refresh_token as string)
      await expect(client.refreshTokenGrant(config, 'not-a-refresh-token')).rejects.toMatchObject({ error: 'invalid_grant' })
      expect(idp.tokenCalls).toMatchObject({ authorizationCode: 1, refreshToken: 2 })
      idp.resetCounters()
      expect(idp.tokenCalls).toMatchObject({ authorizationCode: 0, refreshToken: 0 })
    })

    it('puts the user\'s current roles in the next refreshed tokens', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      idp.setRoles('alice', ['user', 'auditor'])
      try {
        const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string)
        expect(decodeJwt(refreshed.access_token).roles).toEqual(['user', 'auditor'])
        expect(refreshed.claims()?.roles).toEqual(['user', 'auditor'])
      } finally {
        idp.setRoles('alice', ['user'])
      }
    })

    it('refuses refresh tokens of a user whose grants an admin revoked', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      expect(idp.grantsOf('alice').length).toBeGreaterThan(0)
      expect(idp.revokeGrantsOf('alice')).toBeGreaterThan(0)
      expect(idp.grantsOf('alice')).toEqual([])
      await expect(client.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' })
    })

    it('revokes a refresh token through the revocation endpoint (RFC 7009)', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      await client.tokenRevocation(config, tokens.refresh_token as string, { token_type_hint: 'refresh_token' })
      await expect(client.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' })
    })

    it('delays token responses when told to', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      idp.setTokenEndpointDelay(400)
      const started = Date.now()
      await client.refreshTokenGrant(config, tokens.refresh_token as string)
      expect(Date.now() - started).toBeGreaterThanOrEqual(390)
    })

    it('shifts iat and exp of issued tokens by the clock skew', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      idp.setClockSkew(120)
      // Raw token request: openid-client rightly refuses an ID token issued in the future.
      const response = await fetch(`${idp.issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string }),
      })
      expect(response.status).toBe(200)
      const body = await response.json() as { access_token: string, id_token: string }
      const now = Math.floor(Date.now() / 1000)
      for (const token of [body.access_token, body.id_token]) {
        const claims = decodeJwt(token)
        expect(claims.iat).toBeGreaterThanOrEqual(now + 118)
        expect(claims.iat).toBeLessThanOrEqual(now + 121)
        expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeGreaterThan(0)
      }
    })
  })

  describe('API', () => {
    it('answers /me with the verified claims of a valid access token', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const { response, body } = await callApi('/me', tokens.access_token)
      expect(response.status).toBe(200)
      expect(body.claims).toMatchObject({ sub: 'alice', roles: ['user'], aud: API_AUDIENCE })
      expect(response.headers.getSetCookie()).toEqual(['upstream=leak; Path=/'])
    })

    it('refuses missing and invalid tokens with 401 invalid_token, and records them', async () => {
      api.clear()
      const missing = await callApi('/orders', undefined)
      expect(missing.response.status).toBe(401)
      expect(missing.body).toMatchObject({ error: 'invalid_token' })
      expect(missing.response.headers.getSetCookie()).toEqual(['upstream=leak; Path=/'])

      const { tokens } = await signIn('alice', 'alice-password')
      const [header, payload] = tokens.access_token.split('.')
      const forged = `${header}.${payload}.${Buffer.from('not a signature').toString('base64url')}`
      expect((await callApi('/orders', forged)).response.status).toBe(401)
      expect(api.received.map(request => `${request.method} ${request.url}`)).toEqual(['GET /orders', 'GET /orders'])
    })

    it('serves orders to a signed-in user', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const list = await callApi('/orders', tokens.access_token)
      expect(list.response.status).toBe(200)
      expect(list.body).toMatchObject({ user: 'alice' })
      expect(Array.isArray(list.body.orders)).toBe(true)

      const one = await callApi('/orders/42', tokens.access_token)
      expect(one.body).toEqual({ id: '42', user: 'alice' })

      api.clear()
      const created = await callApi('/orders', tokens.access_token, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: 'Green thing', quantity: 3 }),
      })
      expect(created.response.status).toBe(201)
      expect(created.body).toMatchObject({ order: { item: 'Green thing', quantity: 3 }, user: 'alice' })
      expect(api.received[0]?.body).toEqual({ item: 'Green thing', quantity: 3 })
    })

    it('lets bob (admin) delete a user and refuses alice with 403', async () => {
      const bob = await signIn('bob', 'bob-password')
      const allowed = await callApi('/admin/users/1', bob.tokens.access_token, { method: 'DELETE' })
      expect(allowed.response.status).toBe(200)
      expect(allowed.body).toEqual({ deleted: '1', by: 'bob' })

      const alice = await signIn('alice', 'alice-password')
      const refused = await callApi('/admin/users/1', alice.tokens.access_token, { method: 'DELETE' })
      expect(refused.response.status).toBe(403)
      expect(refused.body).toMatchObject({ error: 'forbidden' })
    })

    it('refuses a token for another audience', async () => {
      const other = await startUpstreamApi({ issuer: idp.issuer, audience: 'https://other.example' })
      try {
        const { tokens } = await signIn('alice', 'alice-password')
        const response = await fetch(`${other.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
        expect(response.status).toBe(401)
      } finally {
        await other.close()
      }
    })

    it('goes down and comes back on the same port', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const { port } = api
      await api.stop()
      await expect(fetch(`${api.url}/public/ping`)).rejects.toThrow()
      await api.start()
      expect(api.port).toBe(port)
      expect((await callApi('/me', tokens.access_token)).response.status).toBe(200)
    })
  })

  describe('outage', () => {
    it('keeps its keys, grants and issuer across stop() and start()', async () => {
      const { tokens } = await signIn('alice', 'alice-password')
      const { port } = idp
      await idp.stop()
      await expect(fetch(`${idp.issuer}/.well-known/openid-configuration`)).rejects.toThrow()
      await idp.start()
      expect(idp.port).toBe(port)
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string)
      expect((await callApi('/me', refreshed.access_token)).response.status).toBe(200)
    })
  })

  describe('logout', () => {
    it('sends a back-channel logout token with sid to a loopback receiver when an admin logs the user out', async () => {
      const { tokens } = await signIn('bob', 'bob-password')
      const sid = tokens.claims()?.sid
      receiver.tokens.length = 0
      // One delivery per IdP session of bob's (earlier tests signed him in too).
      const deliveries = await idp.logoutUser('bob')
      expect(deliveries).toContainEqual(expect.objectContaining({ uri: receiver.url, status: 200, sub: 'bob', sid }))
      expect(receiver.tokens).toHaveLength(deliveries.length)
      const logoutClaims = receiver.tokens.map(token => decodeJwt(token)).find(claims => claims.sid === sid)
      expect(logoutClaims).toMatchObject({ iss: idp.issuer, aud: CLIENT_ID, sub: 'bob', sid })
      expect(logoutClaims?.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} })
      expect(logoutClaims?.nonce).toBeUndefined()

      // The IdP sessions are gone: the next authorization asks for credentials again.
      expect(await idp.logoutUser('bob')).toEqual([])
    })

    it('sends back-channel logout on RP-initiated logout at the end-session endpoint', async () => {
      const { browser, tokens } = await signIn('alice', 'alice-password')
      receiver.tokens.length = 0
      const endSessionUrl = client.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: 'http://127.0.0.1:9/',
      })
      const result = await logoutAtIdp(browser, endSessionUrl.href)
      expect(result.finalUrl).toBe('http://127.0.0.1:9/')
      expect(receiver.tokens).toHaveLength(1)
      expect(decodeJwt(receiver.tokens[0] as string)).toMatchObject({ sub: 'alice', sid: tokens.claims()?.sid })
      expect(idp.backchannelLogoutsSent.at(-1)).toMatchObject({ uri: receiver.url, status: 200, sub: 'alice' })
    })
  })

  it('reports no server errors', () => {
    expect(idp.serverErrors).toEqual([])
  })
})
