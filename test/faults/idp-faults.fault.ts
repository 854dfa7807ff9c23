/**
 * The identity provider down or slow during login and refresh. (Refresh with
 * the IdP down is covered in test/integration/token-refresh.test.ts.) The
 * client gets a JSON 502 `idp_unavailable` within OIDC_HTTP_TIMEOUT, no
 * session is created by a failed login, an existing one is kept through a
 * failed refresh, and everything works again once the IdP does.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, waitFor } from '../helpers/sign-in.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { authenticateAtIdp, capture, loginThroughIdp, startLogin } from '../helpers/login-flow.js'
import { arrivedAt, send, tally } from './traffic.js'

const HTTP_TIMEOUT_S = 2
const SLOWER_THAN_TIMEOUT_MS = 5000
// The timeout plus room for a loaded machine; far below the token endpoint's delay.
const BOUND_MS = HTTP_TIMEOUT_S * 1000 + 1500
const ACCESS_TOKEN_TTL = 2

let stack: Stack
let redis: Redis
beforeAll(async () => {
  stack = await startStack({
    idp: { accessTokenTtl: ACCESS_TOKEN_TTL },
    gatewayEnv: { OIDC_HTTP_TIMEOUT: String(HTTP_TIMEOUT_S), TOKEN_REFRESH_SKEW: '0' },
  })
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

const sessionKeys = () => redis.keys('bff:{s:*}')
const loginStates = () => redis.keys('bff:login:*')

/** A browser that has been through the IdP and holds a callback URL it has not visited yet. */
async function atCallback () {
  const browser = new HttpBrowser({ cookieScope: 'host' })
  const start = await startLogin(browser, stack.publicUrl)
  const { callbackUrl } = await authenticateAtIdp(browser, start.authorizationUrl, stack.publicUrl, { username: 'alice', password: 'alice-password' })
  return { browser, callbackUrl }
}

describe('login while the IdP is down or slow', () => {
  it('a callback whose code exchange cannot reach the IdP: 502 idp_unavailable, no session, no cookie; the next login works', async () => {
    const { browser, callbackUrl } = await atCallback()
    const sessionsBefore = (await sessionKeys()).length
    await stack.idp.stop()
    let callback
    try {
      callback = await capture(browser, callbackUrl)
    } finally {
      await stack.idp.start()
    }
    expect(callback.status).toBe(502)
    expect(JSON.parse(callback.body)).toEqual({ error: 'idp_unavailable', message: expect.any(String) })
    expect(callback.setCookies.filter(line => line.startsWith(`${stack.gateway.config.cookie.name}=`))).toEqual([])
    expect((await sessionKeys()).length).toBe(sessionsBefore)
    expect((await browser.fetch(`${stack.publicUrl}/bff/user`)).status).toBe(401)

    await loginThroughIdp(browser, stack.publicUrl, { username: 'alice', password: 'alice-password' })
    expect((await browser.fetch(`${stack.publicUrl}/api/orders`)).status).toBe(200)
  })

  it('a token endpoint slower than OIDC_HTTP_TIMEOUT: the callback gives up with 502 within the bound, and no session', async () => {
    const { browser, callbackUrl } = await atCallback()
    const sessionsBefore = (await sessionKeys()).length
    stack.idp.resetCounters()
    stack.idp.setTokenEndpointDelay(SLOWER_THAN_TIMEOUT_MS)
    const started = Date.now()
    let callback
    try {
      callback = await capture(browser, callbackUrl)
    } finally {
      stack.idp.setTokenEndpointDelay(0)
    }
    const elapsed = Date.now() - started
    expect(callback.status).toBe(502)
    expect(JSON.parse(callback.body)).toMatchObject({ error: 'idp_unavailable' })
    expect(elapsed).toBeGreaterThanOrEqual(HTTP_TIMEOUT_S * 1000 - 100)
    expect(elapsed).toBeLessThan(BOUND_MS)
    expect(stack.idp.tokenCalls.authorizationCode).toBe(1)
    expect((await sessionKeys()).length).toBe(sessionsBefore)
    expect((await browser.fetch(`${stack.publicUrl}/bff/user`)).status).toBe(401)
    console.info(`[faults] slow IdP at login: callback answered 502 after ${elapsed} ms (OIDC_HTTP_TIMEOUT ${HTTP_TIMEOUT_S} s, token endpoint ${SLOWER_THAN_TIMEOUT_MS} ms)`)
  })
})

describe('refresh while the IdP is slow', () => {
  it('requests at expiry get 502 idp_unavailable within the bound from ONE abandoned refresh; the session is kept and works once the IdP is fast again', async () => {
    const user = await signIn(stack.publicUrl)
    await waitFor(ACCESS_TOKEN_TTL * 1000 + 250)
    stack.idp.resetCounters()
    stack.idp.setTokenEndpointDelay(SLOWER_THAN_TIMEOUT_MS)
    let outcomes
    try {
      outcomes = await Promise.all(Array.from({ length: 10 }, () => send(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })))
    } finally {
      stack.idp.setTokenEndpointDelay(0)
    }
    expect(tally(outcomes)).toEqual({ '502 idp_unavailable': 10 })
    const waits = outcomes.map(o => o.endedAt - o.startedAt)
    expect(Math.max(...waits)).toBeLessThan(BOUND_MS)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    expect(arrivedAt(stack.api, outcomes)).toEqual([])
    expect((await send(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(200)

    const again = await send(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })
    expect(again.status).toBe(200)
    expect(arrivedAt(stack.api, [again])).toHaveLength(1)
    console.info(`[faults] slow IdP at refresh: 10 concurrent requests → 502 in ${Math.min(...waits)}–${Math.max(...waits)} ms from 1 token call; session kept`)
  })
})

describe('GET /bff/login before the IdP was ever reached', () => {
  it('answers 502 idp_unavailable as JSON and writes no login state; works once the IdP is up, without a restart', async () => {
    // A gateway that starts while the IdP is down has no discovery document to build the redirect from.
    await stack.gateways[0]!.close()
    await stack.idp.stop()
    let login
    try {
      await stack.restartGateway(0)
      const statesBefore = (await loginStates()).length
      login = await send(`${stack.publicUrl}/bff/login?returnTo=/`)
      expect((await loginStates()).length).toBe(statesBefore)
    } finally {
      await stack.idp.start()
    }
    expect(login.status).toBe(502)
    expect(login.contentType).toMatch(/^application\/json/)
    expect(JSON.parse(login.body)).toEqual({ error: 'idp_unavailable', message: expect.any(String) })
    expect(login.setCookies).toEqual([])
    expect(login.endedAt - login.startedAt).toBeLessThan(BOUND_MS)

    const user = await signIn(stack.publicUrl)
    expect((await send(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)
  })
})
