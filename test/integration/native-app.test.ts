/**
 * Native apps (RFC 8252 sign-in, RFC 9449 DPoP-bound sessions) against real
 * parts: a real redis-server, the oidc-provider IdP, the token-only API and
 * two gateway instances. The app is driven from the test: an ES256 key in
 * WebCrypto, proofs made with jose, the sign-in done in an HttpBrowser
 * standing in for the system browser.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, waitFor } from '../helpers/sign-in.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { capture, startLogin } from '../helpers/login-flow.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { keyFor } from '../../gateway/session/keys.js'
import { Redis } from 'ioredis'
import { APP_REDIRECT_URI, APP_USER_AGENT, dpopProof, nativeHandoff, NativeApp, newAppKey, newPkce, redeem } from '../helpers/native-app.js'

const CLAIMED_HTTPS_REDIRECT = 'https://app.example.com/native/done'

let stack: Stack
let publicUrl: string
beforeAll(async () => {
  stack = await startStack({
    instances: 2,
    gatewayEnv: { NATIVE_REDIRECT_URIS: `${APP_REDIRECT_URI},${CLAIMED_HTTPS_REDIRECT}` },
    policy: (upstream) => ({
      routes: [{
        prefix: '/api',
        upstream,
        allow: [
          { methods: ['GET'], path: '/orders', roles: ['user'] },
          { methods: ['POST'], path: '/orders', roles: ['user'] },
          { methods: ['GET', 'POST'], path: '/echo/:thing', roles: ['user'] },
        ],
      }],
    }),
  })
  publicUrl = stack.publicUrl
})
afterAll(async () => { await stack?.close() })

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${stack.gateway.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })

async function errorOf (response: Response): Promise<{ status: number, error: string }> {
  const body = await response.json() as { error: string }
  return { status: response.status, error: body.error }
}

interface Device { id: string, current: boolean, userAgent: string }

async function devicesOf (app: NativeApp): Promise<Device[]> {
  const response = await app.fetch('/bff/sessions')
  expect(response.status).toBe(200)
  return (await response.json() as { sessions: Device[] }).sessions
}

const currentHandle = async (app: NativeApp) => (await devicesOf(app)).find(d => d.current)!.id

describe('GET /bff/login?client=native', () => {
  it('refuses an unregistered redirect_uri with 400 invalid_redirect_uri, and redirects nowhere', async () => {
    const pkce = newPkce()
    for (const redirectUri of ['com.evil.app:/oauth2redirect', `${APP_REDIRECT_URI}/`, '']) {
      const url = new URL('/bff/login', publicUrl)
      url.search = new URLSearchParams({ client: 'native', redirect_uri: redirectUri, code_challenge: pkce.challenge, code_challenge_method: 'S256', state: 's' }).toString()
      const response = await fetch(url, { redirect: 'manual' })
      expect(await errorOf(response)).toEqual({ status: 400, error: 'invalid_redirect_uri' })
      expect(response.headers.get('location')).toBeNull()
    }
  })

  it('refuses a login without an S256 code_challenge or state with 400 invalid_request, before the IdP', async () => {
    const pkce = newPkce()
    const base = { client: 'native', redirect_uri: APP_REDIRECT_URI, code_challenge: pkce.challenge, code_challenge_method: 'S256', state: 's' }
    for (const change of [{ code_challenge: '' }, { code_challenge: 'short' }, { code_challenge_method: 'plain' }, { state: '' }]) {
      const url = new URL('/bff/login', publicUrl)
      url.search = new URLSearchParams({ ...base, ...change }).toString()
      const response = await fetch(url, { redirect: 'manual' })
      expect(await errorOf(response), JSON.stringify(change)).toEqual({ status: 400, error: 'invalid_request' })
      expect(response.headers.get('location')).toBeNull()
      // No login was started: no binding cookie, nothing to come back to.
      expect(response.headers.getSetCookie()).toEqual([])
    }
  })

  it('ends at the app\'s redirect URI with a code and the app\'s state, and sets no session cookie', async () => {
    const handoff = await nativeHandoff(publicUrl)
    expect(handoff.callback.status).toBe(302)
    expect(`${handoff.location.protocol}${handoff.location.pathname}`).toBe(APP_REDIRECT_URI)
    expect(handoff.code).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(handoff.error).toBeNull()
    expect(handoff.callback.setCookies.filter(c => c.startsWith('bff='))).toEqual([])
    expect(handoff.callback.headers.get('cache-control')).toBe('no-store')
  })

  it('works with a claimed https redirect URI too', async () => {
    const handoff = await nativeHandoff(publicUrl, { redirectUri: CLAIMED_HTTPS_REDIRECT })
    expect(handoff.location.origin + handoff.location.pathname).toBe(CLAIMED_HTTPS_REDIRECT)
    expect(handoff.code).not.toBeNull()
  })

  it('sends a failure back to the app as error= with its state', async () => {
    const browser = new HttpBrowser()
    const pkce = newPkce()
    const { authorizationUrl } = await startLogin(browser, publicUrl, {
      query: { client: 'native', redirect_uri: APP_REDIRECT_URI, code_challenge: pkce.challenge, code_challenge_method: 'S256', state: 'app-state' },
    })
    const gatewayState = new URL(authorizationUrl).searchParams.get('state')!
    const callback = new URL('/bff/callback', publicUrl)
    // What the IdP sends when the user says no.
    callback.search = new URLSearchParams({ state: gatewayState, iss: stack.idp.issuer, error: 'access_denied' }).toString()
    const response = await capture(browser, callback.href)
    expect(response.status).toBe(302)
    const location = new URL(response.location!)
    expect(`${location.protocol}${location.pathname}`).toBe(APP_REDIRECT_URI)
    expect(Object.fromEntries(location.searchParams)).toEqual({ error: 'access_denied', state: 'app-state' })
  })

  it('leaves a browser\'s login as it was', async () => {
    const user = await signIn(publicUrl, 'alice')
    expect((await fetch(`${publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(200)
  })
})

describe('POST /bff/native/session', () => {
  it('redeems the code once, with the verifier, for a session bound to the proof\'s key', async () => {
    const key = await newAppKey()
    const handoff = await nativeHandoff(publicUrl)
    const response = await redeem(publicUrl, key, { code: handoff.code, code_verifier: handoff.pkce.verifier })
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.getSetCookie()).toEqual([])
    const body = await response.json() as Record<string, string>
    expect(body).toEqual({ session: expect.any(String), expiresAt: expect.any(String), idleExpiresAt: expect.any(String) })
    expect(Date.parse(body.expiresAt!)).toBeGreaterThan(Date.now())
    expect(Date.parse(body.idleExpiresAt!)).toBeGreaterThan(Date.now())

    const again = await redeem(publicUrl, key, { code: handoff.code, code_verifier: handoff.pkce.verifier })
    expect(await errorOf(again)).toEqual({ status: 400, error: 'invalid_grant' })
  })

  it('refuses with 403 account_disabled a sign-in whose account was disabled while it finished (the flag set, its sessions not yet ended)', async () => {
    const key = await newAppKey()
    const handoff = await nativeHandoff(publicUrl, { username: 'bob' })
    // The instant inside a disable between setting the flag and ending the user's sessions: the
    // handoff's epoch still holds, so only a look at the flag after the session exists refuses it.
    const redis = new Redis(stack.redis!.url)
    try {
      await redis.set(keyFor.accountDisabled('bob'), '1')
      expect(await errorOf(await redeem(publicUrl, key, { code: handoff.code, code_verifier: handoff.pkce.verifier }))).toEqual({ status: 403, error: 'account_disabled' })
      const listed = await (await admin('/admin/users/bob/sessions')).json() as { sessions: unknown[] }
      expect(listed.sessions).toEqual([])
    } finally {
      await redis.del(keyFor.accountDisabled('bob'))
      redis.disconnect()
    }
  })

  it('refuses a wrong verifier with invalid_grant, and the code is spent', async () => {
    const key = await newAppKey()
    const handoff = await nativeHandoff(publicUrl)
    expect(await errorOf(await redeem(publicUrl, key, { code: handoff.code, code_verifier: newPkce().verifier }))).toEqual({ status: 400, error: 'invalid_grant' })
    expect(await errorOf(await redeem(publicUrl, key, { code: handoff.code, code_verifier: handoff.pkce.verifier }))).toEqual({ status: 400, error: 'invalid_grant' })
  })

  it('refuses a made-up code with invalid_grant', async () => {
    const key = await newAppKey()
    expect(await errorOf(await redeem(publicUrl, key, { code: 'A'.repeat(43), code_verifier: newPkce().verifier }))).toEqual({ status: 400, error: 'invalid_grant' })
  })

  it('refuses a missing or bad proof with 401 invalid_dpop_proof, leaving the code redeemable', async () => {
    const key = await newAppKey()
    const handoff = await nativeHandoff(publicUrl)
    const body = { code: handoff.code, code_verifier: handoff.pkce.verifier }
    const url = `${publicUrl}/bff/native/session`
    for (const proof of [null, 'not-a-proof', await dpopProof(key, 'GET', url), await dpopProof(key, 'POST', `${publicUrl}/bff/user`)]) {
      expect(await errorOf(await redeem(publicUrl, key, body, proof))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
    }
    expect((await redeem(publicUrl, key, body)).status).toBe(200)
  })

  it('refuses a malformed body or deviceName with 400 invalid_request', async () => {
    const key = await newAppKey()
    for (const body of [{}, { code: 'x' }, { code: 'x', code_verifier: 7 }, { code: 'x', code_verifier: 'y', deviceName: '' },
      { code: 'x', code_verifier: 'y', deviceName: 'd'.repeat(65) }, { code: 'x', code_verifier: 'y', deviceName: 'line\nbreak' }]) {
      expect(await errorOf(await redeem(publicUrl, key, body)), JSON.stringify(body)).toEqual({ status: 400, error: 'invalid_request' })
    }
  })
})

describe('a native app\'s session', () => {
  it('signs in, calls the API (which gets the Bearer token only), lists its device by name, and logs out', async () => {
    const app = await NativeApp.signIn(publicUrl, { deviceName: 'Alice\'s iPhone 15' })

    const user = await app.fetch('/bff/user')
    expect(user.status).toBe(200)
    expect(await user.json()).toMatchObject({ sub: 'alice', roles: ['user'] })

    stack.api.clear()
    const echoed = await app.fetch('/api/echo/thing?x=1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
    expect(echoed.status).toBe(200)
    const received = stack.api.received.at(-1)!
    expect(received.headers.authorization).toMatch(/^Bearer ey/)
    expect(received.headers.dpop).toBeUndefined()
    expect(received.headers.cookie).toBeUndefined()
    expect(JSON.stringify(received.headers)).not.toContain(app.credential)
    expect(await echoed.json()).toMatchObject({ user: 'alice', body: { a: 1 } })

    // An unsafe request needs no CSRF token.
    expect((await app.fetch('/api/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":"x"}' })).status).toBe(201)

    const devices = await devicesOf(app)
    const current = devices.find(d => d.current)!
    expect(current.userAgent).toBe('Alice\'s iPhone 15')
    const listed = await (await admin('/admin/users/alice/sessions')).json() as { sessions: Device[] }
    expect(listed.sessions.find(s => s.id === current.id)).toMatchObject({ userAgent: 'Alice\'s iPhone 15', ip: '127.0.0.1' })

    const logout = await app.fetch('/bff/logout', { method: 'POST' })
    expect(logout.status).toBe(200)
    expect(await logout.json()).toHaveProperty('logoutUrl')
    expect(await errorOf(await app.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
  })

  it('without a deviceName, is listed by the app\'s User-Agent', async () => {
    const app = await NativeApp.signIn(publicUrl)
    expect((await devicesOf(app)).find(d => d.current)!.userAgent).toBe(APP_USER_AGENT)
  })

  it('works on every instance, with a proof naming PUBLIC_URL', async () => {
    const app = await NativeApp.signIn(publicUrl)
    const response = await app.fetch('/api/orders', { baseUrl: stack.gateways[1]!.url })
    expect(response.status).toBe(200)
  })

  describe('is refused with 401 invalid_dpop_proof', () => {
    let app: NativeApp
    beforeAll(async () => { app = await NativeApp.signIn(publicUrl) })

    it('without a proof', async () => {
      expect(await errorOf(await app.fetch('/bff/user', { proof: null }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
    })

    it('with another key\'s proof', async () => {
      const stranger = await newAppKey()
      const proof = await dpopProof(stranger, 'GET', `${publicUrl}/bff/user`)
      expect(await errorOf(await app.fetch('/bff/user', { proof }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
    })

    it('with a proof used before, on this instance or another', async () => {
      const proof = await app.proof('GET', `${publicUrl}/api/orders`)
      expect((await app.fetch('/api/orders', { proof })).status).toBe(200)
      expect(await errorOf(await app.fetch('/api/orders', { proof }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
      expect(await errorOf(await app.fetch('/api/orders', { proof, baseUrl: stack.gateways[1]!.url }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
    })

    it('with a proof for another URL or method', async () => {
      expect(await errorOf(await app.fetch('/bff/user', { proof: await app.proof('GET', `${publicUrl}/bff/sessions`) }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
      expect(await errorOf(await app.fetch('/bff/user', { proof: await app.proof('POST', `${publicUrl}/bff/user`) }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
      expect(await errorOf(await app.fetch('/bff/user', { proof: await app.proof('GET', 'https://evil.example/bff/user') }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
    })

    it('with an iat out of the 60 s window', async () => {
      const now = Math.floor(Date.now() / 1000)
      for (const iat of [now - 120, now + 120]) {
        expect(await errorOf(await app.fetch('/bff/user', { proof: await app.proof('GET', `${publicUrl}/bff/user`, { iat }) }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
      }
    })

    it('on a proxied route, which the upstream never hears of', async () => {
      stack.api.clear()
      expect(await errorOf(await app.fetch('/api/orders', { proof: null }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
      expect(await errorOf(await app.fetch('/api/orders', { method: 'POST', body: '{}', proof: await app.proof('GET', `${publicUrl}/api/orders`) }))).toEqual({ status: 401, error: 'invalid_dpop_proof' })
      expect(stack.api.received).toEqual([])
    })
  })

  it('is never accepted from a cookie, and a browser\'s session never from the header: 401 unauthenticated', async () => {
    const app = await NativeApp.signIn(publicUrl)
    const asCookie = await fetch(`${publicUrl}/bff/user`, { headers: { cookie: `bff=${app.credential}` } })
    expect(await errorOf(asCookie)).toEqual({ status: 401, error: 'unauthenticated' })
    // Not even with a good proof alongside.
    const withProof = await fetch(`${publicUrl}/api/orders`, { headers: { cookie: `bff=${app.credential}`, dpop: await app.proof('GET', `${publicUrl}/api/orders`) } })
    expect(await errorOf(withProof)).toEqual({ status: 401, error: 'unauthenticated' })

    const browser = await signIn(publicUrl, 'alice')
    const browserCredential = browser.cookie.split('=')[1]!
    const key = await newAppKey()
    for (const path of ['/bff/user', '/api/orders']) {
      const response = await fetch(`${publicUrl}${path}`, {
        headers: { authorization: `Session ${browserCredential}`, dpop: await dpopProof(key, 'GET', `${publicUrl}${path}`) },
      })
      expect(await errorOf(response), path).toEqual({ status: 401, error: 'unauthenticated' })
    }
    // Both still work where they belong.
    expect((await fetch(`${publicUrl}/bff/user`, { headers: { cookie: browser.cookie } })).status).toBe(200)
    expect((await app.fetch('/bff/user')).status).toBe(200)
  })

  it('answers 401 unauthenticated to a made-up credential', async () => {
    const key = await newAppKey()
    const response = await fetch(`${publicUrl}/bff/user`, {
      headers: { authorization: `Session ${randomUUID()}`, dpop: await dpopProof(key, 'GET', `${publicUrl}/bff/user`) },
    })
    expect(await errorOf(response)).toEqual({ status: 401, error: 'unauthenticated' })
  })
})

describe('a native session ends by every revocation path', () => {
  it('an operator revoking that session', async () => {
    const app = await NativeApp.signIn(publicUrl)
    const handle = await currentHandle(app)
    expect((await admin(`/admin/sessions/${handle}`, { method: 'DELETE' })).status).toBe(200)
    expect(await errorOf(await app.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
    expect(await errorOf(await app.fetch('/bff/user', { baseUrl: stack.gateways[1]!.url }))).toEqual({ status: 401, error: 'unauthenticated' })
  })

  it('the identity provider\'s back-channel logout', async () => {
    const app = await NativeApp.signIn(publicUrl, { username: 'bob' })
    expect((await app.fetch('/bff/user')).status).toBe(200)
    const deliveries = await stack.idp.logoutUser('bob')
    expect(deliveries.length).toBeGreaterThan(0)
    expect(await errorOf(await app.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
  })

  it('"sign out other devices" from the same user\'s browser', async () => {
    const app = await NativeApp.signIn(publicUrl)
    const browser = await signIn(publicUrl, 'alice')
    const response = await fetch(`${publicUrl}/bff/sessions?others=true`, {
      method: 'DELETE',
      headers: { cookie: browser.cookie, 'x-csrf-token': browser.csrfToken },
    })
    expect(response.status).toBe(200)
    expect(await errorOf(await app.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
    expect((await fetch(`${publicUrl}/bff/user`, { headers: { cookie: browser.cookie } })).status).toBe(200)
  })

  it('the app signing out another device (no CSRF token needed)', async () => {
    const phone = await NativeApp.signIn(publicUrl)
    const tablet = await NativeApp.signIn(publicUrl)
    const tabletHandle = await currentHandle(tablet)
    expect((await phone.fetch(`/bff/sessions/${tabletHandle}`, { method: 'DELETE' })).status).toBe(200)
    expect(await errorOf(await tablet.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
    expect((await phone.fetch('/bff/user')).status).toBe(200)
  })

  it('an operator signing the user out everywhere, which also voids a handoff code in flight', async () => {
    const app = await NativeApp.signIn(publicUrl)
    const handoff = await nativeHandoff(publicUrl)
    expect((await admin('/admin/users/alice/sessions', { method: 'DELETE' })).status).toBe(200)
    expect(await errorOf(await app.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
    const key = await newAppKey()
    expect(await errorOf(await redeem(publicUrl, key, { code: handoff.code, code_verifier: handoff.pkce.verifier }))).toEqual({ status: 400, error: 'invalid_grant' })
  })
})

describe('lifetimes', () => {
  // Short ones, on a stack of their own: a handoff code of 1 s, sessions idle for 1 s at most.
  let shortLived: Stack
  beforeAll(async () => {
    shortLived = await startStack({
      store: 'memory',
      gatewayEnv: { NATIVE_REDIRECT_URIS: APP_REDIRECT_URI, SESSION_IDLE_TIMEOUT: '1' },
      deps: { handoffCodeTtlMs: 1000 },
    })
  })
  afterAll(async () => { await shortLived?.close() })

  // Time itself is the event in both: nothing to await but the clock.
  it('a handoff code is refused with invalid_grant once its lifetime is over', async () => {
    const key = await newAppKey()
    const handoff = await nativeHandoff(shortLived.publicUrl)
    await waitFor(1100)
    const response = await redeem(shortLived.publicUrl, key, { code: handoff.code, code_verifier: handoff.pkce.verifier })
    expect(await errorOf(response)).toEqual({ status: 400, error: 'invalid_grant' })
  })

  it('a native session expires when idle, like a browser\'s', async () => {
    const app = await NativeApp.signIn(shortLived.publicUrl)
    expect((await app.fetch('/bff/user')).status).toBe(200)
    await waitFor(1200)
    expect(await errorOf(await app.fetch('/bff/user'))).toEqual({ status: 401, error: 'unauthenticated' })
  })
})
