/**
 * The login rate limit: per client IP, on /bff/login and /bff/callback, with
 * its counters in the shared Redis so that two gateway instances behind one
 * load balancer enforce one limit between them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'

const LIMIT = 5

let stack: Stack

beforeAll(async () => {
  // Behind a (trusted) proxy, X-Forwarded-For names the client: one test host can act as many.
  stack = await startStack({ instances: 2, gatewayEnv: { LOGIN_RATE_LIMIT: String(LIMIT), TRUST_PROXY: 'true' } })
})
afterAll(async () => { await stack?.close() })

async function hit (instance: number, path: string, clientIp: string) {
  const response = await fetch(`${stack.gateways[instance]!.url}${path}`, { headers: { 'x-forwarded-for': clientIp }, redirect: 'manual' })
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() }
}

describe.each([
  ['/bff/login', 302],
  ['/bff/callback?state=x&code=y', 400],
])('%s', (path, normalStatus) => {
  it(`allows ${LIMIT} a minute per client across both instances, then answers 429 rate_limited on either`, async () => {
    const client = path.startsWith('/bff/login') ? '10.0.0.1' : '10.0.1.1'
    for (let i = 0; i < LIMIT; i++) {
      expect((await hit(i % 2, path, client)).status).toBe(normalStatus)
    }
    for (const instance of [0, 1]) {
      const refused = await hit(instance, path, client)
      expect(refused.status).toBe(429)
      expect(JSON.parse(refused.body)).toEqual({ error: 'rate_limited', message: expect.any(String) })
      expect(Number(refused.retryAfter)).toBeGreaterThan(0)
    }
  })

  it('counts each client IP on its own', async () => {
    const other = path.startsWith('/bff/login') ? '10.0.0.2' : '10.0.1.2'
    expect((await hit(1, path, other)).status).toBe(normalStatus)
  })
})

describe('other endpoints', () => {
  it('are not limited by the login limit', async () => {
    for (let i = 0; i < LIMIT * 2; i++) {
      expect((await hit(i % 2, '/bff/user', '10.0.0.1')).status).toBe(401)
    }
  })
})
