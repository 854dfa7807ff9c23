/**
 * The walking product, end to end over real HTTP: a browser-like client signs
 * in through the real identity provider, the gateway keeps the tokens, and
 * proxied API calls carry the bearer token and nothing of the browser's.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { HttpBrowser } from '../helpers/http-browser.js'
import { capture, loginThroughIdp, startLogin, authenticateAtIdp, type CapturedResponse } from '../helpers/login-flow.js'
import { startStack, type Stack } from '../helpers/stack.js'

let stack: Stack
/** Every token string the IdP handed out, captured at the IdP itself. */
const issuedTokens: string[] = []

beforeAll(async () => {
  stack = await startStack()
  stack.idp.provider.on('grant.success', (...args: unknown[]) => {
    const ctx = args[0] as { body?: Record<string, unknown> }
    for (const field of ['access_token', 'refresh_token', 'id_token']) {
      const value = ctx.body?.[field]
      if (typeof value === 'string') issuedTokens.push(value)
    }
  })
})
afterAll(async () => { await stack?.close() })
beforeEach(() => { stack.api.clear() })

async function signIn (username = 'alice', password = `${username}-password`) {
  const browser = new HttpBrowser()
  const login = await loginThroughIdp(browser, stack.publicUrl, { username, password })
  return { browser, login }
}

function expectNoTokenIn (responses: Array<Pick<CapturedResponse, 'body' | 'headers'>>) {
  expect(issuedTokens.length).toBeGreaterThan(0)
  for (const response of responses) {
    const headerLines: string[] = []
    response.headers.forEach((value, name) => headerLines.push(`${name}: ${value}`))
    const headerText = headerLines.join('\n')
    for (const token of issuedTokens) {
      expect(response.body).not.toContain(token)
      expect(headerText).not.toContain(token)
    }
  }
}

describe('GET /bff/login → IdP → GET /bff/callback', () => {
  it('signs alice in and sets an opaque HttpOnly session cookie with the contract\'s attributes', async () => {
    const { browser, login } = await signIn()
    expect(login.callbackResponse.status).toBe(302)
    expect(login.callbackResponse.location).toBe(`${stack.publicUrl}/`)

    const cookie = browser.cookie(stack.publicUrl, 'bff')
    expect(cookie).toBeDefined()
    expect(cookie).toMatchObject({ httpOnly: true, path: '/', hostOnly: true, sameSite: 'Lax' })
    // Plain http on a non-localhost address: the demo exception to Secure.
    expect(cookie!.secure).toBe(false)
    expect(cookie!.maxAge).toBeGreaterThan(0)
    expect(cookie!.maxAge).toBeLessThanOrEqual(1800)
    const raw = login.callbackResponse.setCookies.find(line => line.startsWith('bff='))!
    expect(raw).not.toMatch(/domain=/i)
    // Opaque: no JWT, no user data.
    expect(cookie!.value).not.toMatch(/^eyJ/)
    expect(cookie!.value).not.toContain('alice')
  })

  it('sends the authorization request with PKCE S256, a fresh state and nonce', async () => {
    const browser = new HttpBrowser()
    const first = new URL((await startLogin(browser, stack.publicUrl)).authorizationUrl)
    const second = new URL((await startLogin(browser, stack.publicUrl)).authorizationUrl)
    expect(first.origin).toBe(stack.idp.issuer)
    expect(first.searchParams.get('response_type')).toBe('code')
    expect(first.searchParams.get('code_challenge_method')).toBe('S256')
    expect(first.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(first.searchParams.get('redirect_uri')).toBe(`${stack.publicUrl}/bff/callback`)
    for (const param of ['state', 'nonce', 'code_challenge']) {
      expect(first.searchParams.get(param)).toBeTruthy()
      expect(first.searchParams.get(param)).not.toBe(second.searchParams.get(param))
    }
  })

  it('returns to the requested same-origin path', async () => {
    const browser = new HttpBrowser()
    const login = await loginThroughIdp(browser, stack.publicUrl, { username: 'alice', password: 'alice-password', returnTo: '/orders?tab=open' })
    expect(login.callbackResponse.location).toBe(`${stack.publicUrl}/orders?tab=open`)
  })

  it.each(['//evil.example', 'https://evil.example', '/\\evil.example'])('refuses returnTo=%s with 400 invalid_return_to', async (returnTo) => {
    const response = await capture(new HttpBrowser(), `${stack.publicUrl}/bff/login?returnTo=${encodeURIComponent(returnTo)}`)
    expect(response.status).toBe(400)
    expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_return_to' })
  })

  it('never hands a browser any token the IdP issued', async () => {
    const { browser, login } = await signIn()
    const user = await capture(browser, `${stack.publicUrl}/bff/user`)
    const orders = await capture(browser, `${stack.publicUrl}/api/orders`)
    expectNoTokenIn([...login.chain.filter(r => r.url.startsWith(stack.publicUrl)), user, orders])
  })

  it('creates a new session id at every login and ends the previous one', async () => {
    const { browser } = await signIn()
    const before = browser.cookie(stack.publicUrl, 'bff')!.value
    await loginThroughIdp(browser, stack.publicUrl, { username: 'alice', password: 'alice-password' })
    const after = browser.cookie(stack.publicUrl, 'bff')!.value
    expect(after).not.toBe(before)
    const old = await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: `bff=${before}` } })
    expect(old.status).toBe(401)
  })

  it('refuses a callback whose state this browser did not start (400, no session)', async () => {
    const victim = new HttpBrowser()
    const attacker = new HttpBrowser()
    const start = await startLogin(attacker, stack.publicUrl)
    const idp = await authenticateAtIdp(attacker, start.authorizationUrl, stack.publicUrl, { username: 'bob', password: 'bob-password' })
    // Login CSRF: the attacker's callback URL forced on the victim's browser.
    const forced = await capture(victim, idp.callbackUrl)
    expect(forced.status).toBe(400)
    expect(JSON.parse(forced.body)).toMatchObject({ error: 'invalid_state' })
    expect(victim.cookie(stack.publicUrl, 'bff')).toBeUndefined()
  })

  it('uses state once: replaying the callback fails', async () => {
    const browser = new HttpBrowser()
    const start = await startLogin(browser, stack.publicUrl)
    const idp = await authenticateAtIdp(browser, start.authorizationUrl, stack.publicUrl, { username: 'alice', password: 'alice-password' })
    expect((await capture(browser, idp.callbackUrl)).status).toBe(302)
    const replay = await capture(browser, idp.callbackUrl)
    expect(replay.status).toBe(400)
  })

  it('answers a callback with a tampered code with 401 and no session', async () => {
    const browser = new HttpBrowser()
    const start = await startLogin(browser, stack.publicUrl)
    const idp = await authenticateAtIdp(browser, start.authorizationUrl, stack.publicUrl, { username: 'alice', password: 'alice-password' })
    const url = new URL(idp.callbackUrl)
    url.searchParams.set('code', 'forged-code')
    const response = await capture(browser, url.href)
    expect(response.status).toBe(401)
    expect(JSON.parse(response.body)).toMatchObject({ error: 'login_failed' })
    expect(browser.cookie(stack.publicUrl, 'bff')).toBeUndefined()
  })
})

describe('GET /bff/user', () => {
  it('shows alice, her roles, a CSRF token and the session\'s expiry', async () => {
    const { browser } = await signIn()
    const response = await capture(browser, `${stack.publicUrl}/bff/user`)
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const user = JSON.parse(response.body)
    expect(user).toMatchObject({ sub: 'alice', name: 'Alice Example', email: 'alice@example.com', roles: ['user'] })
    expect(user.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Date.parse(user.expiresAt)).toBeGreaterThan(Date.now())
    expect(Date.parse(user.idleExpiresAt)).toBeLessThanOrEqual(Date.parse(user.expiresAt))
    expect(user.claims).toMatchObject({ sub: 'alice', roles: ['user'] })
    expect(user.claims).not.toHaveProperty('nonce')
  })

  it('shows bob\'s admin role', async () => {
    const { browser } = await signIn('bob')
    const user = JSON.parse((await capture(browser, `${stack.publicUrl}/bff/user`)).body)
    expect(user.roles).toEqual(['user', 'admin'])
  })

  it.each([
    ['no cookie', undefined],
    ['a forged cookie', 'bff=forged.value.signature'],
    ['a well-formed but unknown cookie', 'bff=AAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.sig'],
  ])('answers 401 unauthenticated with %s', async (_case, cookie) => {
    const response = await fetch(`${stack.publicUrl}/bff/user`, { headers: cookie ? { cookie } : {} })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ error: 'unauthenticated', message: expect.any(String) })
  })
})

describe('proxied /api requests', () => {
  it('forwards GET /api/orders with a valid bearer JWT and without the browser\'s cookie, and returns the answer unchanged', async () => {
    const { browser } = await signIn()
    const response = await browser.fetch(`${stack.publicUrl}/api/orders?status=open&x=%20y`, {
      headers: { 'x-csrf-token': 'should-not-pass', authorization: 'Bearer browser-supplied' },
    })
    expect(response.status).toBe(200)
    const body = await response.json()
    expect(body).toMatchObject({ user: 'alice' })
    expect(response.headers.getSetCookie().some(line => line.startsWith('upstream='))).toBe(false)

    const received = stack.api.received.at(-1)!
    expect(received.method).toBe('GET')
    expect(received.url).toBe('/orders?status=open&x=%20y')
    expect(received.headers.authorization).toMatch(/^Bearer eyJ/)
    expect(received.headers.authorization).not.toBe('Bearer browser-supplied')
    expect(issuedTokens).toContain(received.headers.authorization!.slice('Bearer '.length))
    expect(received.headers.cookie).toBeUndefined()
    expect(received.headers['x-csrf-token']).toBeUndefined()
  })

  it('the API verified the token: /api/me echoes alice\'s claims with her roles', async () => {
    const { browser } = await signIn()
    const response = await browser.fetch(`${stack.publicUrl}/api/me`)
    expect(response.status).toBe(200)
    const { claims } = await response.json() as { claims: Record<string, unknown> }
    expect(claims).toMatchObject({ sub: 'alice', roles: ['user'], iss: stack.idp.issuer })
  })

  it('forwards a POST with the CSRF token and its body', async () => {
    const { browser } = await signIn()
    const { csrfToken } = JSON.parse((await capture(browser, `${stack.publicUrl}/bff/user`)).body)
    const response = await browser.fetch(`${stack.publicUrl}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken, origin: stack.publicUrl },
      body: JSON.stringify({ item: 'Green thing', quantity: 3 }),
    })
    expect(response.status).toBe(201)
    expect(stack.api.received.at(-1)).toMatchObject({ method: 'POST', url: '/orders', body: { item: 'Green thing', quantity: 3 } })
  })

  it('refuses a POST without the CSRF token (403 csrf) and forwards nothing', async () => {
    const { browser } = await signIn()
    const response = await browser.fetch(`${stack.publicUrl}/api/orders`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
    })
    expect(response.status).toBe(403)
    expect(await response.json()).toMatchObject({ error: 'csrf' })
    expect(stack.api.received).toEqual([])
  })

  it('answers 403 forbidden for a route the policy does not allow alice, without contacting the API', async () => {
    const { browser } = await signIn()
    const { csrfToken } = JSON.parse((await capture(browser, `${stack.publicUrl}/bff/user`)).body)
    const adminOnly = await browser.fetch(`${stack.publicUrl}/api/admin/users/7`, { method: 'DELETE', headers: { 'x-csrf-token': csrfToken } })
    expect(adminOnly.status).toBe(403)
    expect(await adminOnly.json()).toMatchObject({ error: 'forbidden' })
    const noRule = await browser.fetch(`${stack.publicUrl}/api/invoices`)
    expect(noRule.status).toBe(403)
    expect(stack.api.received).toEqual([])
  })

  it('lets bob (admin) through the admin-only route', async () => {
    const { browser } = await signIn('bob')
    const { csrfToken } = JSON.parse((await capture(browser, `${stack.publicUrl}/bff/user`)).body)
    const response = await browser.fetch(`${stack.publicUrl}/api/admin/users/7`, { method: 'DELETE', headers: { 'x-csrf-token': csrfToken } })
    expect(response.status).toBe(200)
    expect(stack.api.received.at(-1)).toMatchObject({ method: 'DELETE', url: '/admin/users/7' })
  })

  it('answers 404 not_found for an unknown prefix', async () => {
    const { browser } = await signIn()
    const response = await browser.fetch(`${stack.publicUrl}/other/orders`)
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: 'not_found' })
  })

  it.each([
    ['no cookie', undefined],
    ['a forged cookie', 'bff=forged'],
  ])('answers 401 unauthenticated with %s, and the API sees nothing', async (_case, cookie) => {
    const response = await fetch(`${stack.publicUrl}/api/orders`, { headers: cookie ? { cookie } : {} })
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'unauthenticated' })
    expect(stack.api.received).toEqual([])
  })
})

describe('CORS without ALLOWED_ORIGINS', () => {
  it('gives no origin CORS headers, and refuses preflights without forwarding them', async () => {
    const { browser } = await signIn()
    const origin = 'https://elsewhere.example'
    const get = await browser.fetch(`${stack.publicUrl}/api/orders`, { headers: { origin } })
    expect(get.status).toBe(200)
    const preflight = await fetch(`${stack.publicUrl}/api/orders`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-csrf-token' },
    })
    expect(preflight.status).toBeGreaterThanOrEqual(400)
    for (const response of [get, preflight]) {
      const names: string[] = []
      response.headers.forEach((_value, name) => { if (name.startsWith('access-control-')) names.push(name) })
      expect(names).toEqual([])
    }
    expect(stack.api.received.map(r => r.method)).toEqual(['GET'])
  })
})

describe('POST /bff/logout', () => {
  it('needs the CSRF header', async () => {
    const { browser } = await signIn()
    const response = await browser.fetch(`${stack.publicUrl}/bff/logout`, { method: 'POST' })
    expect(response.status).toBe(403)
    expect((await capture(browser, `${stack.publicUrl}/bff/user`)).status).toBe(200)
  })

  it('destroys the session, clears the cookie, revokes the grant at the IdP and returns the end-session URL', async () => {
    const { browser } = await signIn()
    const cookieValue = browser.cookie(stack.publicUrl, 'bff')!.value
    const { csrfToken } = JSON.parse((await capture(browser, `${stack.publicUrl}/bff/user`)).body)
    const grantsBefore = stack.idp.grantsOf('alice').length
    const response = await capture(browser, `${stack.publicUrl}/bff/logout`, { method: 'POST', headers: { 'x-csrf-token': csrfToken } })
    expect(response.status).toBe(200)
    const { logoutUrl } = JSON.parse(response.body)
    expect(new URL(logoutUrl).origin).toBe(stack.idp.issuer)
    expect(logoutUrl).not.toContain('id_token_hint')
    expectNoTokenIn([response])
    const cleared = response.setCookies.find(line => line.startsWith('bff='))!
    expect(cleared).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/i)
    expect(stack.idp.grantsOf('alice').length).toBe(grantsBefore - 1)

    // After logout: 401 everywhere, the API sees nothing — even replaying the old cookie.
    stack.api.clear()
    expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: `bff=${cookieValue}` } })).status).toBe(401)
    expect((await fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: `bff=${cookieValue}` } })).status).toBe(401)
    expect(stack.api.received).toEqual([])
  })
})

describe('sessions in Redis', () => {
  it('keeps no token, cookie value or user data in the clear in Redis', async () => {
    const { browser } = await signIn()
    const cookieValue = browser.cookie(stack.publicUrl, 'bff')!.value
    const redis = new Redis(stack.redis!.url)
    try {
      const keys = await redis.keys('*')
      const dump: string[] = []
      for (const key of keys) {
        const type = await redis.type(key)
        if (type === 'hash') dump.push(JSON.stringify(await redis.hgetall(key)))
        if (type === 'zset') dump.push(JSON.stringify(await redis.zrange(key, 0, -1)))
        if (type === 'string') dump.push((await redis.get(key)) ?? '')
        dump.push(key)
      }
      const text = dump.join('\n')
      for (const token of issuedTokens) expect(text).not.toContain(token)
      expect(text).not.toContain(cookieValue.split('.')[0])
      expect(text).not.toContain('alice@example.com')
    } finally {
      redis.disconnect()
    }
  })

  it('survive a gateway restart (same Redis)', async () => {
    const { browser } = await signIn()
    await stack.gateways[0]!.close()
    const restarted = await stack.restartGateway(0)
    expect(restarted.url).toBe(stack.publicUrl)
    const user = await capture(browser, `${stack.publicUrl}/bff/user`)
    expect(user.status).toBe(200)
    expect(JSON.parse(user.body).sub).toBe('alice')
    expect((await browser.fetch(`${stack.publicUrl}/api/orders`)).status).toBe(200)
  })
})

describe('GET /healthz', () => {
  it('answers 200 while the process is alive', async () => {
    const response = await fetch(`${stack.publicUrl}/healthz`)
    expect(response.status).toBe(200)
  })
})
