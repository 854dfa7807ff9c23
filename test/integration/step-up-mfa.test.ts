/**
 * Step-up through the identity provider's real MFA login (issue 18): the mock
 * IdP with acr on gives password logins `urn:mock:pwd`, and asks for a
 * one-time code when `acr_values=urn:mock:mfa` asks for more. A rule that
 * requires the MFA acr, and an upstream's RFC 9470 challenge asking for it,
 * answer a password session 401 step_up_required; its `loginUrl` followed
 * through the IdP's MFA form signs the same user in again, under a new
 * session id, and the request passes. A rule's `maxAge` is judged on the ID
 * token's real `auth_time`. Real oidc-provider, real Redis, the token-only
 * API, a small challenging upstream of the test's own.
 *
 * (step-up.test.ts covers the same paths against an IdP without acr: login
 * URLs, Referer and returnTo, metrics, a step-up by another user.)
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACR_MFA, ACR_PASSWORD, DEFAULT_MFA_CODE } from '../../upstream-mock/idp.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, waitFor, type SignedInUser } from '../helpers/sign-in.js'
import { authenticateAtIdp, capture, findLoginForm, LoginFlowError, type Credentials } from '../helpers/login-flow.js'
import type { HttpBrowser } from '../helpers/http-browser.js'

const ACCESS_TOKEN_TTL = 2
/** Seconds: the `maxAge` of the rule that wants a recent MFA sign-in. */
const RECENT = 3

let challenger: Server
let challengerUrl: string
let stack: Stack
let url: string

beforeAll(async () => {
  // A resource server that wants an MFA sign-in for everything (RFC 9470 §3).
  challenger = createServer((_request, response) => {
    response.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="${ACR_MFA}"`,
    })
    response.end('{"error":"insufficient_user_authentication"}')
  })
  await new Promise<void>(resolve => challenger.listen(0, '127.0.0.1', resolve))
  challengerUrl = `http://127.0.0.1:${(challenger.address() as AddressInfo).port}`
  stack = await startStack({
    idp: { acr: true, accessTokenTtl: ACCESS_TOKEN_TTL },
    gatewayEnv: { TOKEN_REFRESH_SKEW: '0' },
    policy: (api) => ({
      routes: [
        {
          prefix: '/api',
          upstream: api,
          allow: [
            { methods: ['GET'], path: '/orders', roles: ['user'] },
            { methods: ['GET'], path: '/orders/:id', roles: ['user'], acr: [ACR_MFA] },
            { methods: ['GET'], path: '/me', roles: ['user'], acr: [ACR_MFA], maxAge: RECENT },
          ],
        },
        { prefix: '/challenge', upstream: challengerUrl, allow: [{ methods: ['GET'], path: '/payments', roles: ['user'] }] },
      ],
    }),
  })
  url = stack.publicUrl
})
afterAll(async () => {
  await stack?.close()
  await new Promise(resolve => challenger?.close(resolve))
})

interface StepUpBody { error: string, message: string, loginUrl: string }
interface BffUser { sub: string, acr: string | null, authTime: string | null }

const get = (browser: HttpBrowser, path: string, headers: Record<string, string> = {}) => browser.fetch(`${url}${path}`, { headers })
const withCookie = (cookie: string, path: string) => fetch(`${url}${path}`, { headers: { cookie } })
const bffUser = async (browser: HttpBrowser) => await (await get(browser, '/bff/user')).json() as BffUser

async function currentSessionId (cookie: string): Promise<string | undefined> {
  const { sessions } = await (await withCookie(cookie, '/bff/sessions')).json() as { sessions: Array<{ id: string, current: boolean }> }
  return sessions.find(s => s.current)?.id
}

const MFA_CREDENTIALS: Credentials = { username: 'alice', password: 'alice-password', oneTimeCode: DEFAULT_MFA_CODE }

/** Follows a step-up's loginUrl through the IdP as a browser would; returns the IdP's pages and the gateway's answer to the callback. */
async function followLoginUrl (browser: HttpBrowser, loginUrl: string, credentials = MFA_CREDENTIALS) {
  const start = await capture(browser, new URL(loginUrl, url).href)
  expect(start.status).toBe(302)
  const idp = await authenticateAtIdp(browser, start.location!, url, credentials)
  const form = idp.chain.map(findLoginForm).find(found => found !== undefined)
  return { authorizationUrl: new URL(start.location!), askedForOneTimeCode: form !== undefined && 'otp' in form.fields, idp, callback: await capture(browser, idp.callbackUrl) }
}

async function passwordSession (): Promise<SignedInUser> {
  const user = await signIn(url)
  expect(await bffUser(user.browser)).toMatchObject({ sub: 'alice', acr: ACR_PASSWORD })
  return user
}

describe('a rule that requires urn:mock:mfa', () => {
  it('answers a password session 401 step_up_required with a loginUrl asking for it; the API is not contacted', async () => {
    const user = await passwordSession()
    stack.api.clear()
    const response = await get(user.browser, '/api/orders/7', { referer: `${url}/orders/7` })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({
      error: 'step_up_required',
      message: expect.any(String),
      loginUrl: `/bff/login?returnTo=${encodeURIComponent('/orders/7')}&acr_values=${encodeURIComponent(ACR_MFA)}`,
    })
    expect(stack.api.received).toEqual([])
    expect((await get(user.browser, '/api/orders')).status).toBe(200)
  })

  it('following the loginUrl through the IdP\'s MFA login lets the same request pass: the same user, a new session id, acr urn:mock:mfa', async () => {
    const user = await passwordSession()
    const oldCookie = user.cookie
    const oldId = await currentSessionId(oldCookie)
    const { loginUrl } = await (await get(user.browser, '/api/orders/7', { referer: `${url}/orders/7` })).json() as StepUpBody
    const steppingUpAt = Math.floor(Date.now() / 1000) * 1000

    const { authorizationUrl, askedForOneTimeCode, idp, callback } = await followLoginUrl(user.browser, loginUrl)
    expect(authorizationUrl.searchParams.get('acr_values')).toBe(ACR_MFA)
    // The IdP's session is a password one: it asks again, with the one-time code this time.
    expect(idp.askedForCredentials).toBe(true)
    expect(askedForOneTimeCode).toBe(true)
    expect(callback.location).toBe(`${url}/orders/7`)

    stack.api.clear()
    const response = await get(user.browser, '/api/orders/7')
    expect(response.status).toBe(200)
    expect(stack.api.received.map(r => r.url)).toEqual(['/orders/7'])
    const me = await bffUser(user.browser)
    expect(me).toMatchObject({ sub: 'alice', acr: ACR_MFA })
    expect(Date.parse(me.authTime!)).toBeGreaterThanOrEqual(steppingUpAt)
    expect(Date.parse(me.authTime!)).toBeLessThanOrEqual(Date.now())

    const newCookie = user.browser.cookieHeader(url)
    expect(newCookie).not.toBe(oldCookie)
    const newId = await currentSessionId(newCookie)
    expect(newId).toBeDefined()
    expect(newId).not.toBe(oldId)
    expect((await withCookie(oldCookie, '/bff/user')).status).toBe(401)
    expect((await withCookie(oldCookie, '/api/orders')).status).toBe(401)
    expect((await withCookie(newCookie, '/api/orders/7')).status).toBe(200)

    // Without interruption: past the access token's life the new session refreshes (the step-up
    // did not end the grant it shares with the old one), and a refresh is not a sign-in, so the
    // session keeps its acr and auth_time.
    await waitFor(ACCESS_TOKEN_TTL * 1000 + 300)
    stack.idp.resetCounters()
    expect((await get(user.browser, '/api/orders/7')).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    expect(await bffUser(user.browser)).toEqual(expect.objectContaining({ acr: ACR_MFA, authTime: me.authTime }))
  })

  it('a wrong one-time code is refused at the IdP: no new session, the old one goes on and still falls short', async () => {
    const user = await passwordSession()
    const { loginUrl } = await (await get(user.browser, '/api/orders/7')).json() as StepUpBody
    await expect(followLoginUrl(user.browser, loginUrl, { ...MFA_CREDENTIALS, oneTimeCode: '000000' })).rejects.toThrow(LoginFlowError)
    expect(user.browser.cookieHeader(url)).toBe(user.cookie)
    expect(await bffUser(user.browser)).toMatchObject({ sub: 'alice', acr: ACR_PASSWORD })
    expect((await get(user.browser, '/api/orders/7')).status).toBe(401)
  })
})

describe('an upstream\'s RFC 9470 challenge asking for urn:mock:mfa', () => {
  it('gets the same 401 as the rule, and the login it names is the MFA login', async () => {
    const user = await passwordSession()
    const referer = { referer: `${url}/checkout` }
    const fromUpstream = await get(user.browser, '/challenge/payments', referer)
    const fromRule = await get(user.browser, '/api/orders/7', referer)
    expect(fromUpstream.status).toBe(401)
    const body = await fromUpstream.json() as StepUpBody
    expect(body).toEqual({ error: 'step_up_required', message: expect.any(String), loginUrl: `/bff/login?returnTo=%2Fcheckout&acr_values=${encodeURIComponent(ACR_MFA)}` })
    expect((await fromRule.json() as StepUpBody).loginUrl).toBe(body.loginUrl)

    const { askedForOneTimeCode, callback } = await followLoginUrl(user.browser, body.loginUrl)
    expect(askedForOneTimeCode).toBe(true)
    expect(callback.location).toBe(`${url}/checkout`)
    expect(await bffUser(user.browser)).toMatchObject({ sub: 'alice', acr: ACR_MFA })
    expect((await get(user.browser, '/api/orders/7')).status).toBe(200)
  })
})

describe('a rule that requires a recent MFA sign-in (acr and maxAge)', () => {
  it('passes for maxAge whole seconds after the ID token\'s auth_time, as the IdP counts, then asks for both again; the IdP asks for password and code again', async () => {
    const user = await passwordSession()
    const first = await (await get(user.browser, '/api/me')).json() as StepUpBody
    expect(first.loginUrl).toBe(`/bff/login?returnTo=%2F&acr_values=${encodeURIComponent(ACR_MFA)}&max_age=${RECENT}`)
    await followLoginUrl(user.browser, first.loginUrl)
    const { authTime } = await bffUser(user.browser)
    const signedInAt = Date.parse(authTime!)
    expect((await get(user.browser, '/api/me')).status).toBe(200)

    // auth_time is in whole seconds, and the IdP judges max_age in whole seconds too: a sign-in at
    // second S is recent enough for the IdP until second S + maxAge has passed. A gateway stricter
    // than that would send the user to a login the IdP answers from its session, with the same
    // auth_time, which falls short again.
    await waitFor(signedInAt + RECENT * 1000 + 200 - Date.now())
    expect((await get(user.browser, '/api/me')).status).toBe(200)

    await waitFor(signedInAt + (RECENT + 1) * 1000 + 100 - Date.now())
    const stale = await get(user.browser, '/api/me')
    expect(stale.status).toBe(401)
    const again = await stale.json() as StepUpBody
    expect(again.loginUrl).toBe(first.loginUrl)
    // The acr alone still suffices where no maxAge is asked.
    expect((await get(user.browser, '/api/orders/7')).status).toBe(200)

    const { idp, askedForOneTimeCode } = await followLoginUrl(user.browser, again.loginUrl)
    // max_age makes the IdP re-authenticate although its session has the MFA acr.
    expect(idp.askedForCredentials).toBe(true)
    expect(askedForOneTimeCode).toBe(true)
    const renewed = await bffUser(user.browser)
    expect(renewed.acr).toBe(ACR_MFA)
    expect(Date.parse(renewed.authTime!)).toBeGreaterThan(signedInAt)
    expect((await get(user.browser, '/api/me')).status).toBe(200)
  })
})
