/**
 * The layered CSRF defence and the open-redirect defence of /bff/login, as a
 * browser on another site would probe them. Every refusal is 403 `csrf` (or
 * 400 `invalid_return_to`), and the upstream sees nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { echoPolicy } from '../helpers/gateway.js'

const ALLOWED_ORIGIN = 'https://admin.example.test'
const UNSAFE = ['POST', 'PUT', 'PATCH', 'DELETE'] as const

let stack: Stack
let alice: SignedInUser
let bob: SignedInUser

const policy = echoPolicy(['GET', ...UNSAFE])

beforeAll(async () => {
  stack = await startStack({ policy, gatewayEnv: { ALLOWED_ORIGINS: ALLOWED_ORIGIN } })
  alice = await signIn(stack.publicUrl)
  bob = await signIn(stack.publicUrl, 'bob')
})
afterAll(async () => { await stack?.close() })
beforeEach(() => { stack.api.clear() })

async function call (method: string, path: string, headers: Record<string, string>, user = alice) {
  const response = await fetch(`${stack.publicUrl}${path}`, {
    method,
    headers: { cookie: user.cookie, 'content-type': 'application/json', ...headers },
    ...(method === 'GET' ? {} : { body: '{"n":1}' }),
    redirect: 'manual',
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) as { error?: string } : {} }
}

type Attack = [name: string, headers: (user: SignedInUser) => Record<string, string>]

const attacks: Attack[] = [
  ['no X-CSRF-Token', () => ({})],
  ['an empty X-CSRF-Token', () => ({ 'x-csrf-token': '' })],
  ['a wrong X-CSRF-Token', () => ({ 'x-csrf-token': 'A'.repeat(43) })],
  ['the token of another session', () => ({ 'x-csrf-token': bob.csrfToken })],
  ['the token with a different case', (user) => ({ 'x-csrf-token': user.csrfToken.toUpperCase() })],
  ['the token plus a suffix', (user) => ({ 'x-csrf-token': `${user.csrfToken}x` })],
  ['the right token but Origin of another site', (user) => ({ 'x-csrf-token': user.csrfToken, origin: 'https://evil.example' })],
  ['the right token but Origin: null', (user) => ({ 'x-csrf-token': user.csrfToken, origin: 'null' })],
  ['the right token but an Origin that only starts like ours', (user) => ({ 'x-csrf-token': user.csrfToken, origin: `${stack.publicUrl}.evil.example` })],
  ['the right token but Sec-Fetch-Site: cross-site', (user) => ({ 'x-csrf-token': user.csrfToken, 'sec-fetch-site': 'cross-site' })],
]

const rows = UNSAFE.flatMap(method => attacks.map(([name, headers]) => [method, name, headers] as const))

describe('unsafe methods on proxied routes', () => {
  it.each(rows)('%s with %s → 403 csrf, nothing forwarded', async (method, _name, headers) => {
    const response = await call(method, '/api/echo/1', headers(alice))
    expect(response.status).toBe(403)
    expect(response.body).toEqual({ error: 'csrf', message: expect.any(String) })
    expect(stack.api.received).toEqual([])
  })

  it.each(UNSAFE.flatMap(method => [
    [method, 'no Origin', {}],
    [method, 'our own Origin', { origin: 'PUBLIC' }],
    [method, 'an ALLOWED_ORIGINS origin', { origin: ALLOWED_ORIGIN }],
    [method, 'Sec-Fetch-Site: same-origin', { 'sec-fetch-site': 'same-origin' }],
    [method, 'Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
  ] as const))('%s with the token and %s is forwarded', async (method, _name, extra) => {
    const headers: Record<string, string> = { ...extra, 'x-csrf-token': alice.csrfToken }
    if (headers.origin === 'PUBLIC') headers.origin = stack.publicUrl
    const response = await call(method, '/api/echo/1', headers)
    expect(response.status).toBe(200)
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual([`${method} /echo/1`])
  })

  it('a token sent twice (two header lines) does not pass', async () => {
    const response = await fetch(`${stack.publicUrl}/api/echo/1`, {
      method: 'POST',
      headers: [['cookie', alice.cookie], ['x-csrf-token', alice.csrfToken], ['x-csrf-token', alice.csrfToken]],
    })
    expect(response.status).toBe(403)
    expect(stack.api.received).toEqual([])
  })
})

describe('Sec-Fetch-Site: cross-site, whatever the method', () => {
  const crossSite = { 'sec-fetch-site': 'cross-site' }

  it.each([
    ['GET', '/api/orders'],
    ['GET', '/api/echo/1'],
    ['GET', '/bff/user'],
    ['GET', '/bff/sessions'],
    ['POST', '/bff/logout'],
    ['GET', '/healthz'],
  ])('%s %s → 403 csrf', async (method, path) => {
    const response = await call(method, path, { ...crossSite, 'x-csrf-token': alice.csrfToken })
    expect(response.status).toBe(403)
    expect(response.body).toMatchObject({ error: 'csrf' })
    expect(stack.api.received).toEqual([])
  })

  it('is allowed on /bff/login (302 to the IdP)', async () => {
    const response = await call('GET', '/bff/login', crossSite)
    expect(response.status).toBe(302)
  })

  it('is allowed on /bff/callback (which then checks its state)', async () => {
    const response = await call('GET', '/bff/callback?state=forged&code=x', crossSite)
    expect(response.status).toBe(400)
    expect(response.body).toMatchObject({ error: 'invalid_state' })
  })

  it('is allowed on /bff/backchannel-logout (which then checks its token)', async () => {
    const response = await fetch(`${stack.publicUrl}/bff/backchannel-logout`, {
      method: 'POST',
      headers: { ...crossSite, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'logout_token=forged',
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: 'invalid_logout_token' })
  })
})

describe('POST /bff/logout', () => {
  it.each(attacks)('with %s → 403 csrf and the session lives on', async (_name, headers) => {
    const response = await call('POST', '/bff/logout', headers(alice))
    expect(response.status).toBe(403)
    expect(response.body).toMatchObject({ error: 'csrf' })
    expect((await call('GET', '/bff/user', {})).status).toBe(200)
  })
})

describe('GET /bff/login returnTo (open redirect)', () => {
  const payloads = [
    '//evil.example',
    '//evil.example/path',
    '///evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/%5cevil.example',
    '/%5Cevil.example',
    '/%2f%2fevil.example',
    '/%2F%2Fevil.example',
    '/%2fevil.example',
    'https:evil.example',
    'https://evil.example',
    'http:/evil.example',
    'javascript:alert(1)',
    'data:text/html,x',
    'evil.example',
    '.evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/\r\n/evil.example',
    '/%09/evil.example',
    '/%0a/evil.example',
    '/%0d%0aSet-Cookie:x=1',
    ' /orders',
    '/orders ',
    '/\u2215\u2215evil.example',
    '/\uff0f\uff0fevil.example',
    '/\uff3cevil.example',
    '/%E2%88%95%E2%88%95evil.example',
    '/%EF%BC%8F%EF%BC%8Fevil.example',
    '/\u3002evil.example',
    '/orders/%2e%2e/%2e%2e//evil.example',
    '/%25%32%66%25%32%66evil.example',
    '/%zz',
  ]

  it.each(payloads.map(p => [JSON.stringify(p), p]))('refuses returnTo=%s with 400 invalid_return_to and no redirect', async (_label, returnTo) => {
    const response = await fetch(`${stack.publicUrl}/bff/login?returnTo=${encodeURIComponent(returnTo)}`, { redirect: 'manual' })
    expect(response.status).toBe(400)
    expect(response.headers.get('location')).toBeNull()
    expect(await response.json()).toEqual({ error: 'invalid_return_to', message: expect.any(String) })
  })

  it.each(['/', '/orders', '/orders?tab=open#top', '/login?next=https://example.com/x'])('accepts returnTo=%s', async (returnTo) => {
    const response = await fetch(`${stack.publicUrl}/bff/login?returnTo=${encodeURIComponent(returnTo)}`, { redirect: 'manual' })
    expect(response.status).toBe(302)
    expect(new URL(response.headers.get('location')!).origin).toBe(stack.idp.issuer)
  })
})
