/**
 * Clocks two minutes apart. An identity provider whose clock is off issues ID
 * and access tokens with shifted `iat`/`exp`; a gateway whose clock is off
 * sees every token, logout tokens included, as shifted. Login, refresh,
 * proxying and back-channel logout keep working within the configured
 * tolerances, and the gateway times refreshes by the token response's
 * `expires_in` (its own clock), never by the IdP's `exp`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt } from 'jose'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, waitFor } from '../helpers/sign-in.js'
import { TAG_HEADER } from './traffic.js'
import { startProcessStack, type ProcessStack } from './process-stack.js'

const ACCESS_TOKEN_TTL = 3
const SKEW_SECONDS = 120

describe.each([
  ['ahead', SKEW_SECONDS],
  ['behind', -SKEW_SECONDS],
])('an IdP whose clock is 2 minutes %s', (_name, skew) => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({
      idp: { clockSkewSeconds: skew, accessTokenTtl: ACCESS_TOKEN_TTL },
      gatewayEnv: { TOKEN_REFRESH_SKEW: '0' },
      // The API validates the shifted `exp` with its own leeway; here, wide enough for the IdP's error.
      apiClockToleranceSeconds: SKEW_SECONDS + 30,
    })
  })
  afterAll(async () => { await stack?.close() })

  it('login works, the API accepts the token, and refresh happens when expires_in says, not when the skewed exp says', async () => {
    const user = await signIn(stack.publicUrl)
    const me = await (await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).json() as { sub: string, expiresAt: string }
    expect(me.sub).toBe('alice')
    // The session's own times come from the gateway's clock.
    expect(Math.abs(Date.parse(me.expiresAt) - (Date.now() + stack.gateway.config.absoluteTimeoutSeconds * 1000))).toBeLessThan(10_000)

    stack.idp.resetCounters()
    const call = () => fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie, [TAG_HEADER]: `skew${skew}` } })
    expect((await call()).status).toBe(200)
    const first = stack.api.received.at(-1)!.headers.authorization!
    const claims = decodeJwt(first.slice('Bearer '.length))
    // The token really is skewed: issued in the IdP's (wrong) time.
    expect(Math.abs(claims.iat! - (Math.floor(Date.now() / 1000) + skew))).toBeLessThanOrEqual(5)
    // A token that looks expired (clock behind) or not yet valid (clock ahead) to us is not refreshed early.
    expect(stack.idp.tokenCalls.refreshToken).toBe(0)

    await waitFor(ACCESS_TOKEN_TTL * 1000 + 250)
    const afterExpiry = await call()
    expect(afterExpiry.status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    expect(stack.api.received.at(-1)!.headers.authorization).not.toBe(first)
    // The refreshed ID token (also skewed) was accepted: roles and profile still there.
    const after = await (await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).json() as { roles: string[] }
    expect(after.roles).toEqual(['user'])
    expect((await call()).status).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
  })
})

describe.each([
  ['behind', -SKEW_SECONDS],
  ['ahead of', SKEW_SECONDS],
])('a gateway whose own clock is 2 minutes %s the IdP\'s (a process on a drifted clock)', (_name, offsetSeconds) => {
  let stack: ProcessStack
  beforeAll(async () => { stack = await startProcessStack({ clockOffsetMs: offsetSeconds * 1000 }) })
  afterAll(async () => { await stack?.close() })

  it('signs in, proxies, and honours the IdP\'s back-channel logout (its logout token looks issued in the future, or 2 minutes old)', async () => {
    const user = await signIn(stack.publicUrl)
    expect((await fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)

    const deliveries = await stack.idp.logoutUser('alice')
    expect(deliveries.map(d => d.status), stack.gateways[0]!.output()).toEqual([200])
    expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(401)
  })
})
