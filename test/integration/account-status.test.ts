/**
 * Account status (issue 18): an operator disables a user on one instance; the
 * user's sessions end there at once and on the other instance within 100 ms,
 * their logins are refused with 403 account_disabled until they are enabled.
 * Two gateway instances on one real Redis, the real oidc-provider IdP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { authenticateAtIdp, capture, LoginFlowError, loginToCallback, startLogin } from '../helpers/login-flow.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { runAdminCommand } from '../../gateway/admin/admin-commands.js'
import { DEFAULT_USERS } from '../../upstream-mock/users.js'
import { keyFor } from '../../gateway/session/keys.js'

let stack: Stack
let a: string
let b: string
let redis: Redis
beforeAll(async () => {
  // Carol is disabled at the IdP too; the other tests' users stay clear of that.
  const carol = { username: 'carol', password: 'carol-password', roles: ['user'], name: 'Carol Example', email: 'carol@example.com' }
  stack = await startStack({ instances: 2, idp: { users: [...DEFAULT_USERS, carol] } })
  a = stack.gateways[0]!.url
  b = stack.gateways[1]!.url
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

const admin = (path: string, method = 'GET', instance = 0) =>
  fetch(`${stack.gateways[instance]!.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })

/** The public handle of the session the user's cookie carries. */
async function currentHandle (user: SignedInUser): Promise<string> {
  const response = await fetch(`${a}/bff/sessions`, { headers: { cookie: user.cookie } })
  return ((await response.json()) as { sessions: Array<{ id: string, current: boolean }> }).sessions.find(s => s.current)!.id
}

const apiStatus = async (url: string, user: SignedInUser) =>
  (await fetch(`${url}/api/orders`, { headers: { cookie: user.cookie } })).status

/** A metric's value summed over both instances (each counts what it did). */
async function metric (name: string): Promise<number> {
  let sum = 0
  for (const instance of [0, 1]) {
    const text = await (await admin('/metrics', 'GET', instance)).text()
    sum += text.split('\n').filter(l => l.startsWith(name)).reduce((total, l) => total + Number(l.split(' ').at(-1)), 0)
  }
  return sum
}

/** A login through the real IdP, stopping at the gateway's answer to the callback (whatever it is). */
async function attemptLogin (username: string) {
  const browser = new HttpBrowser({ cookieScope: 'host' })
  return { browser, callback: await loginToCallback(browser, a, { username, password: `${username}-password` }) }
}

describe('GET /admin/users/:sub', () => {
  it('shows the account\'s status and its live sessions', async () => {
    expect(await (await admin('/admin/users/nobody')).json()).toEqual({ sub: 'nobody', status: 'active', sessions: 0 })
    await signIn(a, 'bob')
    await signIn(a, 'bob')
    const view = await (await admin('/admin/users/bob', 'GET', 1)).json() as { sessions: number }
    expect(view).toMatchObject({ sub: 'bob', status: 'active' })
    expect(view.sessions).toBeGreaterThanOrEqual(2)
  })

  it('needs the admin token, like every /admin/* call', async () => {
    for (const [method, path] of [['GET', '/admin/users/alice'], ['POST', '/admin/users/alice/disable'], ['POST', '/admin/users/alice/enable'], ['POST', '/admin/users/alice/refresh']]) {
      const response = await fetch(`${stack.gateways[0]!.adminUrl}${path!}`, { method })
      expect(response.status, `${method!} ${path!}`).toBe(401)
    }
    expect(await (await admin('/admin/users/alice')).json()).toMatchObject({ status: 'active' })
  })
})

describe('POST /admin/users/:sub/disable', () => {
  it('ends every session of the user at once on this instance and within 100 ms on the other; nothing reaches the upstream', async () => {
    const laptop = await signIn(a)
    const phone = await signIn(a)
    const bob = await signIn(a, 'bob')
    // Both instances hold the sessions in their caches.
    for (const url of [a, b]) for (const user of [laptop, phone, bob]) expect(await apiStatus(url, user)).toBe(200)

    const response = await admin('/admin/users/alice/disable', 'POST')
    const disabledAt = Date.now()
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ revoked: 2 })
    stack.api.clear()
    expect(await apiStatus(a, laptop)).toBe(401)
    let onOther = await apiStatus(b, phone)
    while (onOther !== 401 && Date.now() - disabledAt < 100) onOther = await apiStatus(b, phone)
    expect(onOther).toBe(401)
    expect(Date.now() - disabledAt).toBeLessThanOrEqual(100)
    expect(await apiStatus(b, laptop)).toBe(401)
    expect(stack.api.received).toEqual([])
    // Other users are untouched.
    expect(await apiStatus(b, bob)).toBe(200)
    expect(await (await admin('/admin/users/alice', 'GET', 1)).json()).toEqual({ sub: 'alice', status: 'disabled', sessions: 0 })
  })

  it('refuses the user\'s login with 403 account_disabled: no session, no cookie, no grant left at the IdP', async () => {
    const refusalsBefore = await metric('bff_audit_events_total{event="login_failed",reason="account_disabled"}')
    const grantsBefore = stack.idp.grantsOf('alice').length
    const keysBefore = (await redis.keys('bff:{s:*}')).length
    const { browser, callback } = await attemptLogin('alice')
    expect(callback.status).toBe(403)
    expect(JSON.parse(callback.body)).toEqual({ error: 'account_disabled', message: expect.any(String) })
    expect(callback.setCookies.filter(line => line.startsWith('bff='))).toEqual([])
    expect((await browser.fetch(`${a}/bff/user`)).status).toBe(401)
    expect((await redis.keys('bff:{s:*}')).length).toBe(keysBefore)
    expect(stack.idp.grantsOf('alice').length).toBe(grantsBefore)
    expect(await metric('bff_audit_events_total{event="login_failed",reason="account_disabled"}')).toBe(refusalsBefore + 1)
    // The other instance refuses it as well (its callback, behind the same PUBLIC_URL): the status lives in Redis.
    const viaB = new HttpBrowser({ cookieScope: 'host' })
    const { authorizationUrl } = await startLogin(viaB, b)
    const idp = await authenticateAtIdp(viaB, authorizationUrl, a, { username: 'alice', password: 'alice-password' })
    const callbackOnB = new URL(idp.callbackUrl)
    callbackOnB.port = new URL(b).port
    expect((await capture(viaB, callbackOnB.href)).status).toBe(403)
  })

  it('after enable, the user signs in again and is served on both instances', async () => {
    const response = await admin('/admin/users/alice/enable', 'POST', 1)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ sub: 'alice', status: 'active' })
    const user = await signIn(a)
    expect(await apiStatus(a, user)).toBe(200)
    expect(await apiStatus(b, user)).toBe(200)
    expect(await (await admin('/admin/users/alice')).json()).toMatchObject({ status: 'active', sessions: 1 })
  })

  it('also ends a session the user index lost (the epoch bump), on the other instance, at its next activity touch', async () => {
    const user = await signIn(a, 'bob')
    expect(await apiStatus(b, user)).toBe(200)
    // A request reads the session's record alone; the user's epoch is looked at when the session's
    // activity is next recorded (at most a minute after the last): aged, that is its next request.
    await redis.hset(keyFor.session(await currentHandle(user)), 'seen', String(Date.now() - 2 * 60_000))
    await redis.del('bff:{u:bob}:sessions')
    try {
      expect(await (await admin('/admin/users/bob/disable', 'POST')).json()).toEqual({ revoked: 0 })
      expect(await apiStatus(b, user)).toBe(401)
      expect(await apiStatus(a, user)).toBe(401)
    } finally {
      await admin('/admin/users/bob/enable', 'POST')
    }
    expect(await apiStatus(b, await signIn(a, 'bob'))).toBe(200)
  })

  it('counts status changes by status and source', async () => {
    expect(await metric('bff_account_status_changes_total{status="disabled",source="operator"}')).toBeGreaterThanOrEqual(2)
    expect(await metric('bff_account_status_changes_total{status="active",source="operator"}')).toBeGreaterThanOrEqual(2)
  })
})

describe('disabled at the IdP and at the gateway, end to end', () => {
  it('ends the user\'s sessions on the other instance within 100 ms, refuses every login after, and lets them back in once enabled', async () => {
    const laptop = await signIn(a, 'carol')
    const phone = await signIn(a, 'carol')
    for (const url of [a, b]) for (const user of [laptop, phone]) expect(await apiStatus(url, user)).toBe(200)
    // A login that has passed the IdP and is on its way back to the gateway's callback.
    const inFlight = new HttpBrowser({ cookieScope: 'host' })
    const { authorizationUrl } = await startLogin(inFlight, a)
    const { callbackUrl } = await authenticateAtIdp(inFlight, authorizationUrl, a, { username: 'carol', password: 'carol-password' })

    // The operator disables the user at the IdP, then at the gateway through instance 1.
    expect(stack.idp.disableUser('carol')).toBeGreaterThan(0)
    const response = await admin('/admin/users/carol/disable', 'POST')
    const answeredAt = performance.now()
    expect(await response.json()).toEqual({ revoked: 2 })
    // Instance 2, which served both sessions from its cache a moment ago, polled from the moment
    // the call returned until it refuses.
    let polls = 1
    while (await apiStatus(b, laptop) !== 401) {
      expect(performance.now() - answeredAt).toBeLessThanOrEqual(100)
      polls += 1
    }
    expect(performance.now() - answeredAt, `${polls} poll(s)`).toBeLessThanOrEqual(100)
    expect(await apiStatus(b, phone)).toBe(401)
    expect(await apiStatus(a, phone)).toBe(401)

    // The next login: the IdP refuses the password (its page answers 403) and the gateway never hears of it.
    const atIdp = await attemptLogin('carol').then(() => undefined, (error: unknown) => error)
    expect(atIdp).toBeInstanceOf(LoginFlowError)
    const idpPage = (atIdp as LoginFlowError).chain.at(-1)!
    expect(idpPage.status).toBe(403)
    expect(idpPage.body).toContain('This account is disabled.')
    // The login in flight reaches the callback: no session comes of it.
    const late = await capture(inFlight, callbackUrl)
    // (The IdP no longer knows the account: it refuses the code exchange, so the login fails.)
    expect(late.status).toBe(401)
    expect(JSON.parse(late.body)).toMatchObject({ error: 'login_failed' })
    expect(late.setCookies.filter(line => line.startsWith('bff='))).toEqual([])
    expect((await inFlight.fetch(`${a}/bff/user`)).status).toBe(401)
    // Enabled at the IdP alone, the user gets through the IdP and the gateway still refuses: 403 account_disabled, no session.
    stack.idp.enableUser('carol')
    const refused = await attemptLogin('carol')
    expect(refused.callback.status).toBe(403)
    expect(JSON.parse(refused.callback.body)).toEqual({ error: 'account_disabled', message: expect.any(String) })
    expect(refused.callback.setCookies.filter(line => line.startsWith('bff='))).toEqual([])
    expect((await refused.browser.fetch(`${a}/bff/user`)).status).toBe(401)
    expect(await (await admin('/admin/users/carol', 'GET', 1)).json()).toEqual({ sub: 'carol', status: 'disabled', sessions: 0 })

    // Enabled at the gateway too: the user signs in again and is served by both instances.
    expect((await admin('/admin/users/carol/enable', 'POST', 1)).status).toBe(200)
    const back = await signIn(a, 'carol')
    expect(await apiStatus(a, back)).toBe(200)
    expect(await apiStatus(b, back)).toBe(200)
    // The sessions that ended stay ended.
    expect(await apiStatus(b, laptop)).toBe(401)
  })
})

describe('admin CLI: status, disable, enable, refresh', () => {
  it('runs each against the admin listener', async () => {
    const lines: string[] = []
    const print = (line: string) => lines.push(line)
    const saved = { ADMIN_URL: process.env.ADMIN_URL, ADMIN_TOKEN: process.env.ADMIN_TOKEN }
    Object.assign(process.env, { ADMIN_URL: stack.gateways[1]!.adminUrl, ADMIN_TOKEN: TEST_ADMIN_TOKEN })
    try {
      const user = await signIn(a, 'bob')
      await runAdminCommand(['status', '--user', 'bob'], print)
      expect(lines.at(-1)).toMatch(/^bob: active, [1-9]\d* session\(s\)$/)
      await runAdminCommand(['refresh', '--user', 'bob'], print)
      expect(lines.at(-1)).toMatch(/^[1-9]\d* session\(s\) of bob refresh their tokens before their next request$/)
      await runAdminCommand(['disable', '--user', 'bob'], print)
      expect(lines.at(-1)).toMatch(/^disabled bob: ended [1-9]\d* session\(s\)/)
      expect(await apiStatus(a, user)).toBe(401)
      await runAdminCommand(['status', '--user', 'bob'], print)
      expect(lines.at(-1)).toBe('bob: disabled, 0 session(s)')
      await runAdminCommand(['enable', '--user', 'bob'], print)
      expect(lines.at(-1)).toBe('enabled bob')
      await expect(runAdminCommand(['disable'], print)).rejects.toThrow(/usage:/)
    } finally {
      Object.assign(process.env, saved)
      for (const [k, v] of Object.entries(saved)) if (v === undefined) Reflect.deleteProperty(process.env, k)
    }
  })
})
