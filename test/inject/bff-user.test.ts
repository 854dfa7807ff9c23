/**
 * GET /bff/user over inject: who is signed in, for the SPA, with the CSRF token
 * it needs for state-changing calls; 401 for anyone else, and never a token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, type AppHarness } from '../helpers/app-harness.js'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness() })
afterAll(async () => { await harness?.close() })

const user = (cookie?: string) => harness.app.inject({ url: '/bff/user', ...(cookie ? { headers: { cookie } } : {}) })

describe('GET /bff/user', () => {
  it('without a session: 401 unauthenticated', async () => {
    const response = await user()
    expect(response.statusCode).toBe(401)
    expect(response.json()).toEqual({ error: 'unauthenticated', message: expect.any(String) })
  })

  it.each([
    ['forged', (cookie: string) => cookie.slice(0, -2) + 'xx'],
    ['truncated', (cookie: string) => cookie.slice(0, -1)],
  ])('with a %s cookie: 401 unauthenticated', async (_kind, tamper) => {
    const session = await harness.signIn()
    const response = await user(tamper(session.cookie))
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'unauthenticated' })
  })

  it('with the cookie of a session revoked meanwhile: 401 unauthenticated', async () => {
    const session = await harness.signIn()
    await harness.app.revocation.revoke({ handle: session.handle, reason: 'operator' })
    expect((await user(session.cookie)).statusCode).toBe(401)
  })

  it('with a session: the user, roles, profile claims, CSRF token and expiries; never a token; not cacheable', async () => {
    const session = await harness.signIn({ sub: 'bob', roles: ['user', 'admin'], accessToken: 'secret-access-token' })
    const response = await user(session.cookie)
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    const body = response.json<Record<string, unknown>>()
    expect(body).toEqual({
      sub: 'bob',
      name: 'bob',
      email: null,
      roles: ['user', 'admin'],
      claims: { sub: 'bob', name: 'bob' },
      csrfToken: session.csrfToken,
      expiresAt: expect.any(String),
      idleExpiresAt: expect.any(String),
      // Signed in without an acr or auth_time in its ID token.
      acr: null,
      authTime: null,
    })
    expect(Date.parse(body.idleExpiresAt as string)).toBeLessThanOrEqual(Date.parse(body.expiresAt as string))
    expect(response.body).not.toContain('secret-access-token')
    expect(response.body).not.toContain('refresh-token-of-bob')
  })
})
