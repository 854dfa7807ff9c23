/**
 * Claims refresh on demand (issue 18): roles changed at the identity provider
 * apply at the user's very next request once an operator asks, on every
 * instance, through the one-refresh-per-session machinery: one token call per
 * session, no extra store round trip per request. Two gateway instances on one
 * real Redis, the real oidc-provider IdP (which counts its token calls).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

let stack: Stack
let a: string
let b: string
let redis: Redis
beforeAll(async () => {
  stack = await startStack({ instances: 2 })
  a = stack.gateways[0]!.url
  b = stack.gateways[1]!.url
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})
afterEach(() => { stack.idp.setRoles('alice', ['user']) })

const requestRefresh = async (sub: string, instance = 0) => {
  const response = await fetch(`${stack.gateways[instance]!.adminUrl}/admin/users/${sub}/refresh`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
  expect(response.status).toBe(200)
  return (await response.json() as { sessions: number }).sessions
}

/** DELETE /api/admin/users/9: a route the policy allows only to role `admin`. */
const adminRoute = (url: string, user: SignedInUser) =>
  fetch(`${url}/api/admin/users/9`, { method: 'DELETE', headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken } })

const me = async (url: string, user: SignedInUser) => fetch(`${url}/bff/user`, { headers: { cookie: user.cookie } })

/** How many times Redis has served each of these commands so far. */
async function commandCalls (...names: string[]): Promise<number> {
  const stats = await redis.info('commandstats')
  return names.reduce((sum, name) => sum + Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0), 0)
}

describe('POST /admin/users/:sub/refresh', () => {
  it('a role granted at the IdP: the very next request on either instance passes, with one token call per session', async () => {
    const laptop = await signIn(a)
    const phone = await signIn(a)
    for (const url of [a, b]) for (const device of [laptop, phone]) expect((await adminRoute(url, device)).status).toBe(403)

    stack.idp.setRoles('alice', ['user', 'admin'])
    stack.idp.resetCounters()
    expect(await requestRefresh('alice')).toBe(2)
    expect((await adminRoute(a, laptop)).status).toBe(200)
    expect((await adminRoute(b, phone)).status).toBe(200)
    expect((await adminRoute(b, laptop)).status).toBe(200)
    expect((await adminRoute(a, phone)).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(2)
    expect((await (await me(b, laptop)).json() as { roles: string[] }).roles).toEqual(['user', 'admin'])
    expect(stack.idp.tokenCalls.refreshToken).toBe(2)
  })

  it('a role removed at the IdP: 403 at the next request, nothing reaches the upstream', async () => {
    stack.idp.setRoles('alice', ['user', 'admin'])
    const user = await signIn(a)
    expect((await adminRoute(b, user)).status).toBe(200)
    stack.idp.setRoles('alice', ['user'])
    stack.idp.resetCounters()
    await requestRefresh('alice', 1)
    stack.api.clear()
    const denied = await adminRoute(b, user)
    expect(denied.status).toBe(403)
    expect(await denied.json()).toMatchObject({ error: 'forbidden' })
    expect(stack.api.received).toEqual([])
    expect((await adminRoute(a, user)).status).toBe(403)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
  })

  it('/bff/user takes the same step: the newest roles at once, one token call, none again for the next API call', async () => {
    const user = await signIn(a)
    stack.idp.setRoles('alice', ['user', 'auditor'])
    stack.idp.resetCounters()
    await requestRefresh('alice')
    expect((await (await me(b, user)).json() as { roles: string[] }).roles).toEqual(['user', 'auditor'])
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    expect((await fetch(`${a}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
  })

  it('a refresh the IdP refuses ends the session as usual: /bff/user answers 401 session_expired', async () => {
    const user = await signIn(a, 'bob')
    expect(stack.idp.revokeGrantsOf('bob')).toBeGreaterThanOrEqual(1)
    await requestRefresh('bob')
    const response = await me(b, user)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'session_expired' })
    expect((await me(a, user)).status).toBe(401)
  })

  it('once applied, the session costs no store round trip per request again', async () => {
    const user = await signIn(a)
    await requestRefresh('alice')
    // The refresh, then one read that fills the cache again (as after any write to a session).
    for (let i = 0; i < 2; i += 1) expect((await fetch(`${b}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)
    const before = await commandCalls('hgetall', 'get', 'exists')
    for (let i = 0; i < 20; i += 1) expect((await fetch(`${b}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)
    expect(await commandCalls('hgetall', 'get', 'exists')).toBe(before)
  })

  it('answers how many sessions were marked: none for a user without any', async () => {
    expect(await requestRefresh('nobody')).toBe(0)
  })
})
