/**
 * The proxy's gate over inject, in front of a real upstream on a loopback port:
 * what it refuses (and then the upstream hears nothing), and what the upstream
 * receives when it lets a request through: the bearer token, the path that was
 * matched, and nothing of the browser's credentials. Only HTTP behaviour: the
 * gate's internals are free to change.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startAppHarness, type AppHarness, type TestSession } from '../helpers/app-harness.js'
import { examplePolicy } from '../helpers/gateway.js'
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js'

let upstream: RecordingUpstream
let harness: AppHarness
let alice: TestSession
let bob: TestSession
beforeAll(async () => {
  upstream = await startRecordingUpstream()
  harness = await startAppHarness({ policy: examplePolicy(upstream.url) })
  alice = await harness.signIn({ sub: 'alice', roles: ['user'] })
  bob = await harness.signIn({ sub: 'bob', roles: ['user', 'admin'] })
})
afterAll(async () => {
  await harness?.close()
  await upstream?.close()
})
beforeEach(() => { upstream.requests.length = 0 })

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'
const as = (session: TestSession) => ({ cookie: session.cookie, 'x-csrf-token': session.csrfToken })

describe('proxy gate: refused, and the upstream never contacted', () => {
  it.each([
    ['no cookie', () => ({})],
    ['a forged cookie', () => ({ cookie: `${harness.sessionCookieName}=${alice.cookie.split('=')[1]!.slice(0, -2)}xx` })],
  ])('without a session (%s): 401 unauthenticated', async (_case, headers) => {
    const response = await harness.app.inject({ url: '/api/orders', headers: headers() })
    expect(response.statusCode).toBe(401)
    expect(response.json()).toEqual({ error: 'unauthenticated', message: expect.any(String) })
    expect(upstream.requests).toEqual([])
  })

  it.each([
    ['DELETE', '/api/admin/users/7', 'a rule for another role'],
    ['GET', '/api/unlisted', 'no rule for the path'],
    ['PUT', '/api/orders', 'no rule for the method'],
  ] as const)('%s %s (%s): 403 forbidden', async (method, url, _why) => {
    const response = await harness.app.inject({ method, url, headers: as(alice) })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toEqual({ error: 'forbidden', message: expect.any(String) })
    expect(upstream.requests).toEqual([])
  })

  it.each([
    ['without a session', () => ({})],
    ['with a session but no CSRF token', () => ({ cookie: alice.cookie })],
  ])('a declared body over the limit (%s): 413 before any session check, and the connection is closed', async (_case, headers) => {
    const response = await harness.app.inject({
      method: 'POST',
      url: '/api/orders',
      headers: { ...headers(), 'content-type': 'application/json', 'content-length': String(2 * 1024 * 1024) },
      payload: '{}',
    })
    expect(response.statusCode).toBe(413)
    expect(response.headers.connection).toBe('close')
    expect(upstream.requests).toEqual([])
  })

  it.each(['/nope/orders', '/apix/orders'])('GET %s (no such prefix): 404 not_found', async (url) => {
    const response = await harness.app.inject({ url, headers: as(alice) })
    expect(response.statusCode).toBe(404)
    expect(response.json()).toMatchObject({ error: 'not_found' })
    expect(upstream.requests).toEqual([])
  })

  // inject parses its URL as a browser would, resolving dot-segments (and their encodings) before
  // the gateway sees them; those are sent over raw sockets in test/integration/hardening-paths.test.ts.
  it.each(['/api//orders', '/api/orders%2F1', '/api/orders%5C1', '/api/orders;jsessionid=1', '/api/orders/%zz', '/api/orders%00'])('GET %s (not canonical): 400 invalid_path', async (url) => {
    const response = await harness.app.inject({ url, headers: as(bob) })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({ error: 'invalid_path' })
    expect(upstream.requests).toEqual([])
  })

  it('a state-changing request without the CSRF token: 403 csrf', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/api/orders', headers: { cookie: alice.cookie }, payload: { item: 'book' } })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toMatchObject({ error: 'csrf' })
    expect(upstream.requests).toEqual([])
  })
})

describe('proxy gate: let through', () => {
  it('the upstream gets the matched path with the query, the session\'s bearer token, and none of the browser\'s credentials', async () => {
    const response = await harness.app.inject({
      url: '/api/orders/42?status=open',
      headers: { ...as(alice), authorization: 'Basic YWxpY2U6cGFzc3dvcmQ=', 'x-forwarded-host': 'evil.example' },
    })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ ok: true })
    expect(upstream.requests).toHaveLength(1)
    const [received] = upstream.requests
    expect(received).toMatchObject({ method: 'GET', url: '/orders/42?status=open' })
    expect(received!.headers.authorization).toBe('Bearer access-token-of-alice')
    expect(received!.headers.cookie).toBeUndefined()
    expect(received!.headers['x-csrf-token']).toBeUndefined()
    expect(received!.headers['x-forwarded-host']).not.toBe('evil.example')
  })

  it.each([
    ['POST', '/api/orders', 'alice'],
    ['DELETE', '/api/admin/users/7', 'bob'],
  ] as const)('%s %s with the role and the CSRF token: forwarded with that method, as %s', async (method: Method, url, sub) => {
    const session = sub === 'alice' ? alice : bob
    const response = await harness.app.inject({ method, url, headers: as(session), ...(method === 'POST' ? { payload: { item: 'book' } } : {}) })
    expect(response.statusCode).toBe(200)
    expect(upstream.requests.map(r => [r.method, r.url, r.headers.authorization])).toEqual([[method, url.slice('/api'.length), `Bearer access-token-of-${sub}`]])
  })
})
