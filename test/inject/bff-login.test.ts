/**
 * GET /bff/login over inject, against the real IdP: a 302 to its authorization
 * endpoint with the code flow, PKCE S256, a fresh state and nonce; returnTo
 * validated; the login bound to the browser by a short-lived cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, HARNESS_PUBLIC_URL, type AppHarness } from '../helpers/app-harness.js'
import { TEST_CLIENT_ID } from '../helpers/gateway.js'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness() })
afterAll(async () => { await harness?.close() })

describe('GET /bff/login', () => {
  it('302 to the IdP\'s authorization endpoint: code flow, PKCE S256, state and nonce, this gateway\'s callback', async () => {
    const { response, authorizationUrl } = await harness.startLogin()
    expect(response.statusCode).toBe(302)
    expect(response.headers['cache-control']).toBe('no-store')
    expect(authorizationUrl.href.startsWith(harness.idp!.provider.urlFor('authorization'))).toBe(true)
    const query = authorizationUrl.searchParams
    expect(query.get('response_type')).toBe('code')
    expect(query.get('client_id')).toBe(TEST_CLIENT_ID)
    expect(query.get('redirect_uri')).toBe(`${HARNESS_PUBLIC_URL}/bff/callback`)
    expect(query.get('scope')?.split(' ')).toContain('openid')
    expect(query.get('code_challenge_method')).toBe('S256')
    expect(query.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(query.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(query.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(query.has('prompt')).toBe(false)
  })

  it('every login has its own state, nonce and code challenge', async () => {
    const [first, second] = [(await harness.startLogin()).authorizationUrl.searchParams, (await harness.startLogin()).authorizationUrl.searchParams]
    for (const name of ['state', 'nonce', 'code_challenge']) expect(first.get(name)).not.toBe(second.get(name))
  })

  it('sets the login binding cookie: random, HttpOnly, Secure, SameSite=Lax, Path=/, ten minutes', async () => {
    const { response } = await harness.startLogin()
    const cookie = response.cookies.find(c => c.name === harness.loginCookieName)
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', maxAge: 600 })
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(cookie).not.toHaveProperty('domain')
  })

  it('a browser that has a binding cookie keeps it: one binding serves every login it has in flight', async () => {
    const first = await harness.startLogin()
    const second = await harness.startLogin({}, first.loginCookie)
    expect(second.loginCookie).toBe(first.loginCookie)
  })

  it.each(['/', '/orders', '/orders?tab=open#latest', '/login?next=https://elsewhere.example'])('accepts the same-origin returnTo %j', async (returnTo) => {
    expect((await harness.app.inject({ url: '/bff/login', query: { returnTo } })).statusCode).toBe(302)
  })

  it.each([
    '//evil.example',
    'https://evil.example/',
    '/\\evil.example',
    '\\\\evil.example',
    'javascript:alert(1)',
    'orders',
    '/%2F%2Fevil.example',
    '/ orders',
    `/${'a'.repeat(2048)}`,
  ])('refuses the returnTo %j: 400 invalid_return_to, no redirect and no login cookie', async (returnTo) => {
    const response = await harness.app.inject({ url: '/bff/login', query: { returnTo } })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toEqual({ error: 'invalid_return_to', message: expect.any(String) })
    expect(response.headers.location).toBeUndefined()
    expect(response.cookies).toEqual([])
  })

  it('a browser whose session was revoked from elsewhere must re-authenticate at the IdP (prompt=login)', async () => {
    const session = await harness.signIn()
    await harness.app.revocation.revoke({ handle: session.handle, reason: 'operator' })
    const { authorizationUrl } = await harness.startLogin({}, session.cookie)
    expect(authorizationUrl.searchParams.get('prompt')).toBe('login')
  })

  it('is reachable from another site (Sec-Fetch-Site: cross-site): a link to sign in may live anywhere', async () => {
    const response = await harness.app.inject({ url: '/bff/login', headers: { 'sec-fetch-site': 'cross-site' } })
    expect(response.statusCode).toBe(302)
  })
})
