/**
 * The CSRF defence over inject: `Sec-Fetch-Site: cross-site` is refused on
 * every endpoint but the three other sites must reach; state-changing requests
 * need the session's `X-CSRF-Token` and, when they carry an `Origin`, an allowed
 * one. A refusal is 403 `csrf`, and the request has no effect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, HARNESS_PUBLIC_URL, type AppHarness } from '../helpers/app-harness.js'

const ALLOWED_ORIGIN = 'https://admin.app.example.test'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness({ env: { ALLOWED_ORIGINS: ALLOWED_ORIGIN } }) })
afterAll(async () => { await harness?.close() })

describe('CSRF: Sec-Fetch-Site', () => {
  it.each([
    ['GET', '/bff/user'],
    ['GET', '/bff/sessions'],
    ['POST', '/bff/logout'],
    ['GET', '/api/orders'],
  ] as const)('cross-site %s %s: 403 csrf, even with a session and its token', async (method, url) => {
    const session = await harness.signIn()
    const response = await harness.app.inject({ method, url, headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken, 'sec-fetch-site': 'cross-site' } })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toEqual({ error: 'csrf', message: expect.any(String) })
    expect(await harness.isSignedIn(session)).toBe(true)
  })

  it.each(['same-origin', 'same-site', 'none'])('Sec-Fetch-Site: %s passes', async (site) => {
    const session = await harness.signIn()
    expect((await harness.app.inject({ url: '/bff/user', headers: { cookie: session.cookie, 'sec-fetch-site': site } })).statusCode).toBe(200)
  })

  it.each([
    ['GET', '/bff/login', 302, undefined],
    // Nothing was started or sent: each endpoint's own check answers, not the CSRF one.
    ['GET', '/bff/callback', 400, 'invalid_state'],
    ['POST', '/bff/backchannel-logout', 400, 'invalid_logout_token'],
  ] as const)('%s %s may be reached cross-site (other sites and the IdP send requests there): %i', async (method, url, status, error) => {
    const response = await harness.app.inject({ method, url, headers: { 'sec-fetch-site': 'cross-site' } })
    expect(response.statusCode).toBe(status)
    expect(response.body === '' ? undefined : response.json<{ error: string }>().error).toBe(error)
  })
})

describe('CSRF: the token on state-changing requests', () => {
  it.each([
    ['no X-CSRF-Token', {}],
    ['an empty one', { 'x-csrf-token': '' }],
    ['a wrong one', { 'x-csrf-token': 'A'.repeat(43) }],
    ['one a character short', 'short'],
  ] as const)('with %s: 403 csrf, and the session is not logged out', async (_case, given) => {
    const session = await harness.signIn()
    const token = given === 'short' ? { 'x-csrf-token': session.csrfToken.slice(0, -1) } : given
    const response = await harness.app.inject({ method: 'POST', url: '/bff/logout', headers: { cookie: session.cookie, ...token } })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toMatchObject({ error: 'csrf' })
    expect(await harness.isSignedIn(session)).toBe(true)
  })

  it('another session\'s token: 403 csrf', async () => {
    const [session, other] = [await harness.signIn(), await harness.signIn()]
    const response = await harness.app.inject({ method: 'POST', url: '/bff/logout', headers: { cookie: session.cookie, 'x-csrf-token': other.csrfToken } })
    expect(response.statusCode).toBe(403)
  })
})

describe('CSRF: the Origin of state-changing requests', () => {
  it.each(['https://evil.example', 'null', `${HARNESS_PUBLIC_URL}.evil.example`, 'http://app.example.test'])('a foreign Origin (%s), even with the right token: 403 csrf', async (origin) => {
    const session = await harness.signIn()
    const response = await harness.app.inject({ method: 'POST', url: '/bff/logout', headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken, origin } })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toMatchObject({ error: 'csrf' })
    expect(await harness.isSignedIn(session)).toBe(true)
  })

  it.each([
    ['the gateway\'s own origin', { origin: HARNESS_PUBLIC_URL }],
    ['an origin in ALLOWED_ORIGINS', { origin: ALLOWED_ORIGIN }],
    ['no Origin at all', {}],
  ])('%s, with the right token: the request goes through', async (_case, origin) => {
    const session = await harness.signIn()
    const response = await harness.app.inject({ method: 'POST', url: '/bff/logout', headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken, ...origin } })
    expect(response.statusCode).toBe(200)
    expect(await harness.isSignedIn(session)).toBe(false)
  })
})
