/**
 * Token lifecycle against the real oidc-provider with refresh-token rotation ON
 * (reuse of a rotated refresh token revokes the whole grant) and real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, waitFor, type SignedInUser } from '../helpers/sign-in.js'
import { metricValue } from '../helpers/admin-metrics.js'

const ACCESS_TOKEN_TTL = 2
/** A token is past its life (skew 0) once its TTL and a little clock slack have passed. */
const untilExpired = () => waitFor(ACCESS_TOKEN_TTL * 1000 + 250)

const shortLivedTokens = { idp: { accessTokenTtl: ACCESS_TOKEN_TTL }, gatewayEnv: { TOKEN_REFRESH_SKEW: '0' } }

async function apiCall (url: string, user: SignedInUser, path = '/api/orders') {
  return fetch(`${url}${path}`, { headers: { cookie: user.cookie } })
}

async function sessionKeys (stack: Stack): Promise<string[]> {
  const redis = new Redis(stack.redis!.url)
  try {
    return await redis.keys('bff:{s:*}')
  } finally {
    redis.disconnect()
  }
}

const metric = (stack: Stack, name: string) => metricValue(stack.gateway.adminUrl, name)

describe('refresh on one instance', () => {
  let stack: Stack
  beforeAll(async () => { stack = await startStack(shortLivedTokens) })
  afterAll(async () => { await stack?.close() })

  it('forwards a request after expiry with a NEW valid JWT, and the grant survives for later refreshes', async () => {
    const user = await signIn(stack.publicUrl)
    expect((await apiCall(stack.publicUrl, user)).status).toBe(200)
    const firstToken = stack.api.received.at(-1)!.headers.authorization
    const grants = stack.idp.grantsOf('alice')

    await untilExpired()
    stack.idp.resetCounters()
    const response = await apiCall(stack.publicUrl, user)
    expect(response.status).toBe(200)
    const secondToken = stack.api.received.at(-1)!.headers.authorization
    expect(secondToken).toMatch(/^Bearer eyJ/)
    expect(secondToken).not.toBe(firstToken)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    expect(stack.idp.grantsOf('alice')).toEqual(grants)

    await untilExpired()
    expect((await apiCall(stack.publicUrl, user)).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(2)
    expect(stack.idp.grantsOf('alice')).toEqual(grants)
    expect(await metric(stack, 'bff_token_refresh_successes_total')).toBeGreaterThanOrEqual(2)
  })

  it('100 concurrent requests at expiry: all succeed with exactly one call to the token endpoint', async () => {
    const user = await signIn(stack.publicUrl)
    await untilExpired()
    stack.idp.resetCounters()
    stack.api.clear()
    const responses = await Promise.all(Array.from({ length: 100 }, () => apiCall(stack.publicUrl, user)))
    expect(responses.map(r => r.status)).toEqual(Array(100).fill(200))
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    // Every forwarded request carried the one new token.
    expect(new Set(stack.api.received.map(r => r.headers.authorization)).size).toBe(1)
    await untilExpired()
    expect((await apiCall(stack.publicUrl, user)).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(2)
  })

  it('refreshes before expiry when the token is within TOKEN_REFRESH_SKEW', async () => {
    const skewed = await startStack({ idp: { accessTokenTtl: 60 }, gatewayEnv: { TOKEN_REFRESH_SKEW: '59' }, store: 'memory' })
    try {
      const user = await signIn(skewed.publicUrl)
      await waitFor(1100)
      skewed.idp.resetCounters()
      expect((await apiCall(skewed.publicUrl, user)).status).toBe(200)
      expect(skewed.idp.tokenCalls.refreshToken).toBe(1)
    } finally {
      await skewed.close()
    }
  })

  it('takes roles from the newest tokens: a role removed at the IdP is denied after the next refresh', async () => {
    const bob = await signIn(stack.publicUrl, 'bob')
    const deleteUser = () => fetch(`${stack.publicUrl}/api/admin/users/9`, { method: 'DELETE', headers: { cookie: bob.cookie, 'x-csrf-token': bob.csrfToken } })
    expect((await deleteUser()).status).toBe(200)
    stack.idp.setRoles('bob', ['user'])
    try {
      await untilExpired()
      stack.api.clear()
      const denied = await deleteUser()
      expect(denied.status).toBe(403)
      expect(await denied.json()).toMatchObject({ error: 'forbidden' })
      expect(stack.api.received).toEqual([])
      const me = await (await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: bob.cookie } })).json()
      expect(me.roles).toEqual(['user'])
    } finally {
      stack.idp.setRoles('bob', ['user', 'admin'])
    }
  })

  it('a refresh token revoked at the IdP ends the session: 401 session_expired, session gone from Redis', async () => {
    const user = await signIn(stack.publicUrl)
    const before = await sessionKeys(stack)
    await untilExpired()
    stack.idp.revokeGrantsOf('alice')
    stack.api.clear()
    const response = await apiCall(stack.publicUrl, user)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'session_expired' })
    expect(stack.api.received).toEqual([])
    const after = await sessionKeys(stack)
    expect(after.length).toBeLessThan(before.length)
    expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(401)
  })

  it('a grant revoked while no refresh of ours was in flight is treated as theft: all of the user\'s sessions end', async () => {
    const laptop = await signIn(stack.publicUrl)
    const phone = await signIn(stack.publicUrl)
    const [laptopGrant] = stack.idp.grantsOf('alice')
    // Someone else used (and so rotated away) the laptop session's refresh token.
    const provider = stack.idp.provider as unknown as { RefreshToken: { revokeByGrantId (grantId: string): Promise<void> } }
    await provider.RefreshToken.revokeByGrantId(laptopGrant!)
    await untilExpired()
    const theftsBefore = await metric(stack, 'bff_audit_events_total{event="theft_suspected"')
    const response = await apiCall(stack.publicUrl, laptop)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'session_expired' })
    expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: phone.cookie } })).status).toBe(401)
    expect(await metric(stack, 'bff_audit_events_total{event="theft_suspected"')).toBe(theftsBefore + 1)
  })

  it('an unreachable IdP keeps the session (502 idp_unavailable); requests work again once it is back, without a new login', async () => {
    const user = await signIn(stack.publicUrl)
    await untilExpired()
    await stack.idp.stop()
    try {
      stack.api.clear()
      const response = await apiCall(stack.publicUrl, user)
      expect(response.status).toBe(502)
      expect(await response.json()).toMatchObject({ error: 'idp_unavailable' })
      expect(stack.api.received).toEqual([])
      expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(200)
    } finally {
      await stack.idp.start()
    }
    expect((await apiCall(stack.publicUrl, user)).status).toBe(200)
  })
})

describe('refresh across two instances sharing Redis', () => {
  let stack: Stack
  beforeAll(async () => { stack = await startStack({ ...shortLivedTokens, instances: 2 }) })
  afterAll(async () => { await stack?.close() })

  it('200 concurrent requests split between the instances at expiry: all succeed, exactly one refresh, the grant survives', async () => {
    const user = await signIn(stack.publicUrl)
    await untilExpired()
    stack.idp.resetCounters()
    const urls = stack.gateways.map(g => g.url)
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => apiCall(urls[i % 2]!, user)))
    expect(responses.map(r => r.status)).toEqual(Array(200).fill(200))
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    await untilExpired()
    expect((await apiCall(urls[1]!, user)).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(2)
  })
})

describe('refresh slower than the cross-instance lock\'s lease', () => {
  let stack: Stack
  // A short lease, so the slow IdP below outlasts it and proves the lease is renewed while the refresh runs.
  beforeAll(async () => { stack = await startStack({ ...shortLivedTokens, instances: 2, deps: { refreshLockLeaseMs: 400 } }) })
  afterAll(async () => { await stack?.close() })

  it('a token endpoint slower than the lock\'s lease still sees exactly one refresh', async () => {
    const user = await signIn(stack.publicUrl)
    await untilExpired()
    stack.idp.resetCounters()
    stack.idp.setTokenEndpointDelay(1500)
    try {
      const urls = stack.gateways.map(g => g.url)
      const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => apiCall(urls[i % 2]!, user)))
      expect(responses.map(r => r.status)).toEqual(Array(40).fill(200))
      expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    } finally {
      stack.idp.setTokenEndpointDelay(0)
    }
    expect((await apiCall(stack.gateways[1]!.url, user)).status).toBe(200)
  })
})
