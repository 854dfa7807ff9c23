/**
 * The route policy with two upstreams, each a real API on its own port behind
 * its own prefix: a prefix reaches only its upstream, a rewritePrefix is
 * applied, nothing passes that no rule allows, and refused requests never
 * contact either upstream.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { freePort } from '../helpers/free-port.js'
import { startUpstreamApi, type UpstreamApi } from '../../upstream-mock/api.js'
import type { RoutePolicyJson } from '../helpers/gateway.js'

let stack: Stack
let billing: UpstreamApi
let alice: SignedInUser
let bob: SignedInUser

beforeAll(async () => {
  // The policy names the second API before it runs: it needs the stack's issuer to verify tokens.
  const billingPort = await freePort()
  const policy = (api: string): RoutePolicyJson => ({
    routes: [
      {
        prefix: '/api',
        upstream: api,
        allow: [
          { methods: ['GET'], path: '/orders', roles: ['user'] },
          { methods: ['GET'], path: '/orders/:id', roles: ['user'] },
          { methods: ['DELETE'], path: '/admin/users/:id', roles: ['admin'] },
        ],
      },
      {
        prefix: '/billing',
        upstream: `http://127.0.0.1:${billingPort}`,
        rewritePrefix: '/echo',
        allow: [
          { methods: ['GET'], path: '/invoices', roles: ['user'] },
          { methods: ['GET'], path: '/invoices/:id', roles: ['billing', 'admin'] },
        ],
      },
    ],
  })
  stack = await startStack({ policy })
  billing = await startUpstreamApi({ issuer: stack.idp.issuer, audience: stack.api.url, port: billingPort })
  alice = await signIn(stack.publicUrl)
  bob = await signIn(stack.publicUrl, 'bob')
})
afterAll(async () => {
  await billing?.close()
  await stack?.close()
})
beforeEach(() => {
  stack.api.clear()
  billing.clear()
})

async function get (path: string, user: SignedInUser | null = alice) {
  const response = await fetch(`${stack.publicUrl}${path}`, { headers: user ? { cookie: user.cookie } : {} })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

const seen = () => ({ api: stack.api.received.map(r => r.url), billing: billing.received.map(r => r.url) })

describe('each prefix reaches only its own upstream', () => {
  it('/api/orders goes to the API, unchanged', async () => {
    const response = await get('/api/orders')
    expect(response.status).toBe(200)
    expect(seen()).toEqual({ api: ['/orders'], billing: [] })
  })

  it('/billing/invoices goes to billing, with its rewritePrefix, and billing verified the token', async () => {
    const response = await get('/billing/invoices?month=2026-01')
    expect(response.status).toBe(200)
    expect(response.body).toMatchObject({ url: '/echo/invoices?month=2026-01', user: 'alice' })
    expect(seen()).toEqual({ api: [], billing: ['/echo/invoices?month=2026-01'] })
  })

  it('roles are any-of, per rule: bob (admin) may read an invoice, alice may not', async () => {
    expect((await get('/billing/invoices/9', bob)).status).toBe(200)
    expect(seen()).toEqual({ api: [], billing: ['/echo/invoices/9'] })
    billing.clear()
    const refused = await get('/billing/invoices/9', alice)
    expect(refused).toMatchObject({ status: 403, body: { error: 'forbidden' } })
    expect(seen()).toEqual({ api: [], billing: [] })
  })
})

type Row = [path: string, status: number, code: string, user?: 'none']

const refused: Row[] = [
  // one prefix's rules never open the other's paths
  ['/billing/orders', 403, 'forbidden'],
  ['/api/invoices', 403, 'forbidden'],
  ['/api/echo/invoices', 403, 'forbidden'],
  ['/billing/echo/invoices', 403, 'forbidden'],
  // no pass-through of the bare prefix or of anything below a rule
  ['/billing', 403, 'forbidden'],
  ['/billing/', 403, 'forbidden'],
  ['/api/', 403, 'forbidden'],
  ['/billing/invoices/9/pdf', 403, 'forbidden'],
  ['/api/orders/7/items', 403, 'forbidden'],
  // :id is exactly one non-empty segment
  ['/api/orders/', 403, 'forbidden'],
  ['/api/orders/7/', 403, 'forbidden'],
  // unknown prefixes, including near misses
  ['/bill', 404, 'not_found'],
  ['/billingx/invoices', 404, 'not_found'],
  ['/apiorders', 404, 'not_found'],
  ['/echo/invoices', 404, 'not_found'],
  ['/Billing/invoices', 404, 'not_found'],
  // admin rule, user role
  ['/api/admin/users/1', 403, 'forbidden'],
  // no session at all
  ['/billing/invoices', 401, 'unauthenticated', 'none'],
  ['/api/orders', 401, 'unauthenticated', 'none'],
]

describe('refused requests contact no upstream', () => {
  it.each(refused)('GET %s → %i %s', async (path, status, code, user) => {
    const response = await get(path, user === 'none' ? null : alice)
    expect(response).toEqual({ status, body: { error: code, message: expect.any(String) } })
    expect(seen()).toEqual({ api: [], billing: [] })
  })

  it('a method no rule lists is refused (POST to a GET-only rule)', async () => {
    const response = await fetch(`${stack.publicUrl}/billing/invoices`, {
      method: 'POST', headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrfToken }, body: '{}',
    })
    expect(response.status).toBe(403)
    expect(seen()).toEqual({ api: [], billing: [] })
  })
})
