/**
 * Login options and silent login (issue 18): `/bff/login` passes `prompt`,
 * `max_age`, `acr_values`, `login_hint` and `ui_locales` to the real
 * oidc-provider IdP, refuses anything else about them with 400 before the IdP
 * hears of it, and a `prompt=none` login the IdP cannot complete without the
 * user goes back to `returnTo` with the IdP's error, creating no session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { captureLogLines } from '../helpers/log-lines.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { authenticateAtIdp, capture, findLoginForm, loginThroughIdp, startLogin } from '../helpers/login-flow.js'
import { signIn } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

/** Every line both listeners log, parsed. */
const { lines: logLines, stream: logStream } = captureLogLines()

let stack: Stack
let url: string
beforeAll(async () => {
  stack = await startStack({ deps: { logStream }, gatewayEnv: { LOG_LEVEL: 'info' } })
  url = stack.publicUrl
})
afterAll(async () => { await stack?.close() })

const newBrowser = () => new HttpBrowser({ cookieScope: 'host' })
const sessionCookie = (setCookies: string[]) => setCookies.filter(line => line.startsWith(`${stack.gateway.config.cookie.name}=`))

/** Goes from the authorization URL through the IdP's redirects until they come back to the gateway (no credentials given). */
async function untilCallback (browser: HttpBrowser, authorizationUrl: string): Promise<string> {
  let response = await capture(browser, authorizationUrl)
  while (response.location && new URL(response.location).origin !== new URL(url).origin) response = await capture(browser, response.location)
  if (!response.location) throw new Error(`the IdP did not redirect back: ${response.status} ${response.body.slice(0, 200)}`)
  return response.location
}

describe('GET /bff/login: login options', () => {
  it('passes each option to the identity provider exactly as given', async () => {
    const { authorizationUrl } = await startLogin(newBrowser(), url, {
      query: { prompt: 'login consent', max_age: '300', acr_values: 'urn:example:mfa phr', login_hint: 'alice', ui_locales: 'fr-CA en' },
    })
    const params = new URL(authorizationUrl).searchParams
    expect(params.get('prompt')).toBe('login consent')
    expect(params.get('max_age')).toBe('300')
    expect(params.get('acr_values')).toBe('urn:example:mfa phr')
    expect(params.get('login_hint')).toBe('alice')
    expect(params.get('ui_locales')).toBe('fr-CA en')
    // The gateway's own parameters are still its own.
    expect(params.get('response_type')).toBe('code')
    expect(params.get('code_challenge_method')).toBe('S256')
  })

  it('sends none of them unless asked', async () => {
    const params = new URL((await startLogin(newBrowser(), url)).authorizationUrl).searchParams
    for (const name of ['prompt', 'max_age', 'acr_values', 'login_hint', 'ui_locales']) expect(params.has(name), name).toBe(false)
  })

  it('reaches the IdP: login_hint fills in the username, prompt=login asks for credentials despite the IdP session', async () => {
    const browser = newBrowser()
    await loginThroughIdp(browser, url, { username: 'alice', password: 'alice-password' })
    const { authorizationUrl } = await startLogin(browser, url, { query: { prompt: 'login', login_hint: 'alice' } })
    let page = await capture(browser, authorizationUrl)
    while (page.location) page = await capture(browser, page.location)
    expect(findLoginForm(page)?.fields.username).toBe('alice')
  })

  it.each([
    ['an unknown prompt', 'prompt=always', /prompt/],
    ['none with another prompt', 'prompt=none%20login', /prompt/],
    ['a negative max_age', 'max_age=-5', /max_age/],
    ['a max_age that is not a number', 'max_age=soon', /max_age/],
    ['a quote in acr_values', 'acr_values=urn%3A%22x%22', /acr_values/],
    ['a newline in login_hint', 'login_hint=alice%0d%0aSet-Cookie%3A%20x', /login_hint/],
    ['ui_locales that are not language tags', 'ui_locales=en_US', /ui_locales/],
    ['an option given twice', 'prompt=login&prompt=none', /prompt/],
    ['an empty option', 'acr_values=', /acr_values/],
  ])('refuses %s with 400 invalid_request, and nothing goes to the IdP', async (_case, query, message) => {
    const response = await capture(newBrowser(), `${url}/bff/login?returnTo=%2F&${query}`)
    expect(response.status).toBe(400)
    expect(response.location).toBeUndefined()
    const body = JSON.parse(response.body) as { error: string, message: string }
    expect(body.error).toBe('invalid_request')
    expect(body.message).toMatch(message)
  })
})

describe('silent login (prompt=none)', () => {
  it('without an IdP session: back to returnTo with error=login_required added, no session, audited as a failed login', async () => {
    const browser = newBrowser()
    const from = logLines.length
    const { authorizationUrl } = await startLogin(browser, url, { returnTo: '/app?tab=orders#top', query: { prompt: 'none' } })
    const callbackUrl = await untilCallback(browser, authorizationUrl)
    expect(new URL(callbackUrl).searchParams.get('error')).toBe('login_required')
    const callback = await capture(browser, callbackUrl)
    expect(callback.status).toBe(302)
    expect(callback.location).toBe(`${url}/app?tab=orders&error=login_required#top`)
    expect(sessionCookie(callback.setCookies)).toEqual([])
    expect((await browser.fetch(`${url}/bff/user`)).status).toBe(401)
    expect(logLines.slice(from).filter(line => line.audit === 'login_failed')).toEqual([
      expect.objectContaining({ audit: 'login_failed', reason: 'login_required' }),
    ])

    // The login state was used up, and only ever belonged to this browser.
    expect((await capture(browser, callbackUrl)).status).toBe(400)
    expect(JSON.parse((await capture(newBrowser(), callbackUrl)).body)).toMatchObject({ error: 'invalid_state' })
  })

  it('another browser cannot use a silent login\'s callback', async () => {
    const browser = newBrowser()
    const { authorizationUrl } = await startLogin(browser, url, { query: { prompt: 'none' } })
    const callbackUrl = await untilCallback(browser, authorizationUrl)
    const elsewhere = await capture(newBrowser(), callbackUrl)
    expect(elsewhere.status).toBe(400)
    expect(JSON.parse(elsewhere.body)).toMatchObject({ error: 'invalid_state' })
    expect(elsewhere.location).toBeUndefined()
  })

  it('with an IdP session: signs the user in without showing anything', async () => {
    const browser = newBrowser()
    await loginThroughIdp(browser, url, { username: 'bob', password: 'bob-password' })
    // The page lost its session (the cookie is gone); the IdP still has one.
    browser.setCookie(url, `${stack.gateway.config.cookie.name}=; Max-Age=0; Path=/`)
    expect((await browser.fetch(`${url}/bff/user`)).status).toBe(401)
    const { authorizationUrl } = await startLogin(browser, url, { returnTo: '/home', query: { prompt: 'none' } })
    const callback = await capture(browser, await untilCallback(browser, authorizationUrl))
    expect(callback.location).toBe(`${url}/home`)
    expect(await (await browser.fetch(`${url}/bff/user`)).json()).toMatchObject({ sub: 'bob' })
  })

  it('when the IdP would have to ask for consent again (logout revoked the grant): back with error=consent_required', async () => {
    const browser = newBrowser()
    await loginThroughIdp(browser, url, { username: 'bob', password: 'bob-password' })
    const { csrfToken } = await (await browser.fetch(`${url}/bff/user`)).json() as { csrfToken: string }
    expect((await browser.fetch(`${url}/bff/logout`, { method: 'POST', headers: { 'x-csrf-token': csrfToken } })).status).toBe(200)
    const { authorizationUrl } = await startLogin(browser, url, { returnTo: '/home', query: { prompt: 'none' } })
    const callback = await capture(browser, await untilCallback(browser, authorizationUrl))
    expect(callback.location).toBe(`${url}/home?error=consent_required`)
    expect(sessionCookie(callback.setCookies)).toEqual([])
  })

  it('after an operator revoked the browser\'s session: still silent (max_age=0), so the IdP answers login_required instead of reusing its session', async () => {
    const user = await signIn(url)
    const id = ((await (await user.browser.fetch(`${url}/bff/sessions`)).json()) as { sessions: Array<{ id: string, current: boolean }> }).sessions.find(s => s.current)!.id
    await fetch(`${stack.gateway.adminUrl}/admin/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    const { authorizationUrl } = await startLogin(user.browser, url, { query: { prompt: 'none' } })
    const params = new URL(authorizationUrl).searchParams
    expect(params.get('prompt')).toBe('none')
    expect(params.get('max_age')).toBe('0')
    const callback = await capture(user.browser, await untilCallback(user.browser, authorizationUrl))
    expect(callback.location).toBe(`${url}/?error=login_required`)
    expect((await user.browser.fetch(`${url}/bff/user`)).status).toBe(401)
  })

  it('an interactive login that comes back with login_required is a failed login, not a redirect', async () => {
    const browser = newBrowser()
    const { authorizationUrl } = await startLogin(browser, url)
    const state = new URL(authorizationUrl).searchParams.get('state')!
    const forged = await capture(browser, `${url}/bff/callback?error=login_required&state=${encodeURIComponent(state)}&iss=${encodeURIComponent(stack.idp.issuer)}`)
    expect(forged.status).toBe(401)
    expect(JSON.parse(forged.body)).toMatchObject({ error: 'login_failed' })
  })

  it('errors other than "not without the user" are failed logins even when silent', async () => {
    const browser = newBrowser()
    const { authorizationUrl } = await startLogin(browser, url, { query: { prompt: 'none' } })
    const state = new URL(authorizationUrl).searchParams.get('state')!
    const denied = await capture(browser, `${url}/bff/callback?error=access_denied&state=${encodeURIComponent(state)}&iss=${encodeURIComponent(stack.idp.issuer)}`)
    expect(denied.status).toBe(401)
    expect(denied.location).toBeUndefined()
  })
})

describe('POST /bff/ssf/events without SSF_ISSUER', () => {
  it('is not there: 404', async () => {
    const response = await fetch(`${url}/bff/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: 'a.b.c' })
    expect(response.status).toBe(404)
  })
})

describe('a login with options still signs in normally', () => {
  it('with max_age and ui_locales, through the IdP', async () => {
    const browser = newBrowser()
    const { authorizationUrl } = await startLogin(browser, url, { query: { max_age: '600', ui_locales: 'en' } })
    const idp = await authenticateAtIdp(browser, authorizationUrl, url, { username: 'alice', password: 'alice-password' })
    expect((await capture(browser, idp.callbackUrl)).location).toBe(`${url}/`)
    expect((await browser.fetch(`${url}/bff/user`)).status).toBe(200)
  })
})
