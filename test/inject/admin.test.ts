/**
 * The operator listener over inject (`gateway.admin`): the probes are open,
 * everything else needs the admin bearer token; sessions are listed and revoked
 * by their public handle, and a revocation takes effect on the public listener at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, type AppHarness } from '../helpers/app-harness.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness() })
afterAll(async () => { await harness?.close() })

const operator = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
const admin = (method: 'GET' | 'DELETE', url: string, headers: Record<string, string> = operator) => harness.admin.inject({ method, url, headers })

describe('admin listener: the probes need no token', () => {
  it('GET /healthz: 200', async () => {
    expect((await harness.admin.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' })
  })

  it('GET /readyz: 200 ready while the session store and the IdP answer', async () => {
    const response = await harness.admin.inject({ url: '/readyz' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ready', checks: { sessionStore: 'ok', identityProvider: 'ok' } })
  })

  it('GET /readyz: 503 not_ready while the IdP\'s discovery fails', async () => {
    // Nothing listens on the discard port: discovery fails at once.
    const unready = await startAppHarness({ issuer: 'http://127.0.0.1:9' })
    try {
      const response = await unready.admin.inject({ url: '/readyz' })
      expect(response.statusCode).toBe(503)
      expect(response.json()).toEqual({ status: 'not_ready', checks: { sessionStore: 'ok', identityProvider: 'unavailable' } })
    } finally {
      await unready.close()
    }
  })
})

describe('admin listener: the token', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer not-the-admin-token' }],
    ['the token in another scheme', { authorization: `Basic ${TEST_ADMIN_TOKEN}` }],
  ])('with %s: 401 unauthenticated on /admin/* and /metrics', async (_case, headers) => {
    for (const [method, url] of [['GET', '/admin/users/alice/sessions'], ['DELETE', '/admin/sessions?all=true'], ['GET', '/metrics']] as const) {
      const response = await admin(method, url, headers)
      expect(response.statusCode).toBe(401)
      expect(response.json()).toMatchObject({ error: 'unauthenticated' })
    }
  })

  it('GET /metrics with the token: Prometheus text', async () => {
    const response = await admin('GET', '/metrics')
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/^text\/plain/)
    expect(response.body).toContain('bff_token_refresh_attempts_total')
  })

  it('an unknown /admin path with the token: 404 not_found', async () => {
    expect((await admin('GET', '/admin/nothing-here')).json()).toMatchObject({ error: 'not_found' })
  })
})

describe('admin listener: sessions', () => {
  it('GET /admin/users/:sub/sessions lists that user\'s sessions by public id', async () => {
    const [a, b] = [await harness.signIn({ sub: 'carol' }), await harness.signIn({ sub: 'carol' })]
    await harness.signIn({ sub: 'dave' })
    const response = await admin('GET', '/admin/users/carol/sessions')
    expect(response.statusCode).toBe(200)
    const { sessions } = response.json<{ sessions: Array<Record<string, unknown>> }>()
    expect(sessions.map(s => s.id).sort()).toEqual([a.handle, b.handle].sort())
    expect(Object.keys(sessions[0]!).sort()).toEqual(['createdAt', 'id', 'ip', 'lastSeenAt', 'userAgent'])
  })

  it('DELETE /admin/sessions/:id ends that session: 200 { revoked: 1 }, then 404 for it', async () => {
    const target = await harness.signIn({ sub: 'erin' })
    const bystander = await harness.signIn({ sub: 'erin' })
    expect((await admin('DELETE', `/admin/sessions/${target.handle}`)).json()).toEqual({ revoked: 1 })
    expect(await harness.isSignedIn(target)).toBe(false)
    expect(await harness.isSignedIn(bystander)).toBe(true)
    const again = await admin('DELETE', `/admin/sessions/${target.handle}`)
    expect(again.statusCode).toBe(404)
    expect(again.json()).toMatchObject({ error: 'not_found' })
  })

  it('DELETE /admin/users/:sub/sessions ends every session of the user, and the next login must re-authenticate', async () => {
    const sessions = [await harness.signIn({ sub: 'frank' }), await harness.signIn({ sub: 'frank' })]
    const other = await harness.signIn({ sub: 'grace' })
    expect((await admin('DELETE', '/admin/users/frank/sessions')).json()).toEqual({ revoked: 2 })
    for (const session of sessions) expect(await harness.isSignedIn(session)).toBe(false)
    expect(await harness.isSignedIn(other)).toBe(true)
    const { authorizationUrl } = await harness.startLogin({}, sessions[0]!.cookie)
    expect(authorizationUrl.searchParams.get('prompt')).toBe('login')
  })

  it('DELETE /admin/sessions needs ?all=true (400 invalid_request), and with it ends every session', async () => {
    const sessions = [await harness.signIn({ sub: 'heidi' }), await harness.signIn({ sub: 'ivan' })]
    const refused = await admin('DELETE', '/admin/sessions')
    expect(refused.statusCode).toBe(400)
    expect(refused.json()).toMatchObject({ error: 'invalid_request' })
    expect(await harness.isSignedIn(sessions[0]!)).toBe(true)

    const { revoked } = (await admin('DELETE', '/admin/sessions?all=true')).json<{ revoked: number }>()
    expect(revoked).toBeGreaterThanOrEqual(2)
    for (const session of sessions) expect(await harness.isSignedIn(session)).toBe(false)
  })
})
