/**
 * GET /bff/callback over inject, with the real IdP: the state is checked first
 * (bound to the browser that started the login, usable once), then the code;
 * only a login that passes everything makes a session, always a new one.
 */
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, cookiePair, type AppHarness } from '../helpers/app-harness.js'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness() })
afterAll(async () => { await harness?.close() })

const callback = (url: string, cookie?: string) => harness.app.inject({ url, ...(cookie ? { headers: { cookie } } : {}) })

/** A login started and completed at the IdP; the callback is left for the test to make. */
async function completedAtIdp (query: Record<string, string> = {}) {
  const { authorizationUrl, loginCookie } = await harness.startLogin(query)
  return { callbackUrl: await harness.authenticate(authorizationUrl), loginCookie }
}

function expectRefusedWithoutSession (response: LightMyRequestResponse, status: number, error: string) {
  expect(response.statusCode).toBe(status)
  expect(response.json()).toEqual({ error, message: expect.any(String) })
  expect(response.cookies.find(c => c.name === harness.sessionCookieName)).toBeUndefined()
}

describe('GET /bff/callback: a completed login', () => {
  it('makes a session: the session cookie with the contract\'s attributes, and a 302 to returnTo', async () => {
    const { callbackUrl, loginCookie } = await completedAtIdp({ returnTo: '/orders?tab=open' })
    const response = await callback(callbackUrl, loginCookie)
    expect(response.statusCode).toBe(302)
    expect(response.headers.location).toBe('/orders?tab=open')
    expect(response.headers['cache-control']).toBe('no-store')
    const cookie = response.cookies.find(c => c.name === harness.sessionCookieName)
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', maxAge: 1800 })
    expect(cookie).not.toHaveProperty('domain')

    const user = await harness.app.inject({ url: '/bff/user', headers: { cookie: cookiePair(response, harness.sessionCookieName) } })
    expect(user.json()).toMatchObject({ sub: 'alice', name: 'Alice Example', email: 'alice@example.com', roles: ['user'] })
  })

  it('ends the session the browser had before: a new session id at every login', async () => {
    const earlier = await harness.signIn()
    const { callbackUrl, loginCookie } = await completedAtIdp()
    const response = await callback(callbackUrl, `${loginCookie}; ${earlier.cookie}`)
    expect(response.statusCode).toBe(302)
    const fresh = cookiePair(response, harness.sessionCookieName)
    expect(fresh).not.toBe(earlier.cookie)
    expect(await harness.isSignedIn(earlier)).toBe(false)
    expect(await harness.isSignedIn({ cookie: fresh })).toBe(true)
  })
})

describe('GET /bff/callback: the state', () => {
  it('is single use: the same callback again is refused (400 invalid_state), with no session', async () => {
    const { callbackUrl, loginCookie } = await completedAtIdp()
    expect((await callback(callbackUrl, loginCookie)).statusCode).toBe(302)
    expectRefusedWithoutSession(await callback(callbackUrl, loginCookie), 400, 'invalid_state')
  })

  it('is bound to the browser that started the login: another browser\'s binding cookie is refused', async () => {
    const { callbackUrl } = await completedAtIdp()
    const otherBrowser = (await harness.startLogin()).loginCookie
    expectRefusedWithoutSession(await callback(callbackUrl, otherBrowser), 400, 'invalid_state')
  })

  it('is bound to the browser: a callback without the binding cookie is refused (login CSRF)', async () => {
    const { callbackUrl } = await completedAtIdp()
    expectRefusedWithoutSession(await callback(callbackUrl), 400, 'invalid_state')
  })

  it.each([
    ['unknown', '/bff/callback?code=abc&state=never-issued'],
    ['absent', '/bff/callback?code=abc'],
    ['longer than any state', `/bff/callback?code=abc&state=${'s'.repeat(300)}`],
  ])('an %s state is refused before the code is looked at', async (_case, url) => {
    const { loginCookie } = await harness.startLogin()
    expectRefusedWithoutSession(await callback(url, loginCookie), 400, 'invalid_state')
  })
})

describe('GET /bff/callback: what the IdP sent back', () => {
  it('the IdP said no (error=access_denied): 401 login_failed, no session', async () => {
    const { authorizationUrl, loginCookie } = await harness.startLogin()
    const state = authorizationUrl.searchParams.get('state')!
    const query = new URLSearchParams({ error: 'access_denied', state, iss: harness.idp!.issuer })
    expectRefusedWithoutSession(await callback(`/bff/callback?${query}`, loginCookie), 401, 'login_failed')
  })

  it('a code the IdP never issued: 401 login_failed, no session', async () => {
    const { authorizationUrl, loginCookie } = await harness.startLogin()
    const state = authorizationUrl.searchParams.get('state')!
    const query = new URLSearchParams({ code: 'forged-code', state, iss: harness.idp!.issuer })
    expectRefusedWithoutSession(await callback(`/bff/callback?${query}`, loginCookie), 401, 'login_failed')
  })

  it('a callback naming another issuer (mix-up): 400 login_failed, no session, and the code is never spent', async () => {
    const { callbackUrl, loginCookie } = await completedAtIdp()
    const url = new URL(callbackUrl, 'https://x.invalid')
    url.searchParams.set('iss', 'https://evil.example')
    const calls = harness.idp!.tokenCalls.authorizationCode
    expectRefusedWithoutSession(await callback(`${url.pathname}${url.search}`, loginCookie), 400, 'login_failed')
    expect(harness.idp!.tokenCalls.authorizationCode).toBe(calls)
  })
})
