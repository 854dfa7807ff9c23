/**
 * Running it: metrics, readiness, and a graceful close that lets in-flight
 * requests finish.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

let stack: Stack
beforeAll(async () => { stack = await startStack() })
afterAll(async () => { await stack?.close() })

const scrape = async () => (await fetch(`${stack.gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()

describe('GET /metrics', () => {
  it('exposes requests by route and status, upstream latency, sessions, refreshes, audit events and store errors', async () => {
    const user = await signIn(stack.publicUrl)
    await fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })
    const text = await scrape()
    expect(text).toMatch(/^bff_http_requests_total\{route="\/api\/\*",method="GET",status="200"\} \d+/m)
    expect(text).toMatch(/^bff_upstream_duration_seconds_bucket\{.*upstream="\/api".*\} \d+/m)
    expect(text).toMatch(/^bff_sessions [1-9]\d*$/m)
    expect(text).toMatch(/^bff_session_cache_trusted 1$/m)
    expect(text).toMatch(/^bff_audit_events_total\{event="login",reason=""\} [1-9]/m)
    for (const name of ['bff_token_refresh_attempts_total', 'bff_token_refresh_failures_total', 'bff_token_refresh_lock_waits_total', 'bff_token_refresh_duration_seconds', 'bff_session_store_errors_total', 'bff_process_cpu_seconds_total']) {
      expect(text).toContain(`# TYPE ${name}`)
    }
  })
})

describe('GET /readyz', () => {
  it('is 200 while the store and the IdP answer, 503 naming the one that does not, and recovers by itself', async () => {
    const ready = await fetch(`${stack.gateway.adminUrl}/readyz`)
    expect(ready.status).toBe(200)
    await stack.redis!.stop()
    try {
      const notReady = await fetch(`${stack.gateway.adminUrl}/readyz`)
      expect(notReady.status).toBe(503)
      expect(await notReady.json()).toMatchObject({ checks: { sessionStore: 'unavailable', identityProvider: 'ok' } })
      // Without its invalidation channel the cache is dropped, and the metric says so.
      expect(await scrape()).toMatch(/^bff_session_cache_trusted 0$/m)
    } finally {
      await stack.redis!.start()
    }
    const deadline = Date.now() + 5000
    let status = 0
    while (Date.now() < deadline && status !== 200) {
      status = (await fetch(`${stack.gateway.adminUrl}/readyz`)).status
      if (status !== 200) await new Promise(resolve => setTimeout(resolve, 50))
    }
    expect(status).toBe(200)
    const recovered = await scrape()
    expect(recovered).toMatch(/^bff_session_store_errors_total [1-9]/m)
    // Trust returns with the channel: at once on resubscribing, or at the next heartbeat (1 s).
    let trusted = /^bff_session_cache_trusted 1$/m.test(recovered)
    const trustDeadline = Date.now() + 3000
    while (!trusted && Date.now() < trustDeadline) {
      await new Promise(resolve => setTimeout(resolve, 100))
      trusted = /^bff_session_cache_trusted 1$/m.test(await scrape())
    }
    expect(trusted).toBe(true)
  })
})

describe('graceful close', () => {
  it('lets an in-flight request finish, then stops; the session survives for the next instance', async () => {
    const user = await signIn(stack.publicUrl)
    const inFlight = fetch(`${stack.publicUrl}/api/slow?ms=700`, { headers: { cookie: user.cookie } })
    // Wait until the request has reached the upstream, then close the gateway under it.
    const deadline = Date.now() + 5000
    while (!stack.api.received.some(r => r.url.startsWith('/slow')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    const closing = stack.gateways[0]!.close()
    const response = await inFlight
    expect(response.status).toBe(200)
    await closing
    await expect(fetch(`${stack.publicUrl}/healthz`)).rejects.toThrow()
    await stack.restartGateway(0)
    expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(200)
  })
})
