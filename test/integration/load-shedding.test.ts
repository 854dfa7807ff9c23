/**
 * Load shedding: while the gateway's event loop lags past
 * MAX_EVENT_LOOP_DELAY, requests get 503 `overloaded` with Retry-After and
 * nothing is forwarded; the health probe is still answered; service returns
 * by itself once the lag is gone. The lag is made for real, by keeping this
 * process's event loop (the gateway's) busy.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'

const MAX_DELAY_MS = 50
/** Each turn of the loop is held this long: a steady lag well past the threshold, as under overload. */
const BUSY_TURN_MS = 120
const TAG = 'x-shed-tag'

let stack: Stack
let alice: SignedInUser
beforeAll(async () => {
  stack = await startStack({ gatewayEnv: { MAX_EVENT_LOOP_DELAY: String(MAX_DELAY_MS) } })
  alice = await signIn(stack.publicUrl)
})
afterAll(async () => { await stack?.close() })

/** Keeps the event loop busy for BUSY_TURN_MS of every turn until the returned function is called. */
function saturateEventLoop (): () => void {
  let running = true
  const turn = () => {
    if (!running) return
    const until = performance.now() + BUSY_TURN_MS
    while (performance.now() < until) { /* the work of an overloaded process */ }
    setImmediate(turn)
  }
  setImmediate(turn)
  return () => { running = false }
}

const orders = (tag: string) => fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: alice.cookie, [TAG]: tag } })

describe('an overloaded gateway', () => {
  it('sheds requests with 503 overloaded and Retry-After, answers /healthz, and recovers by itself', async () => {
    const app = stack.gateway.gateway.app
    // Start-up work (key generation, sign-in) may have lagged the loop; begin from a calm one.
    await vi.waitFor(() => expect(app.isUnderPressure()).toBe(false), { timeout: 5000, interval: 50 })
    expect((await orders('before')).status).toBe(200)

    const stop = saturateEventLoop()
    try {
      await vi.waitFor(() => expect(app.isUnderPressure()).toBe(true), { timeout: 5000, interval: 50 })
      const shed = await orders('shed')
      expect(shed.status).toBe(503)
      expect(shed.headers.get('retry-after')).toBe('5')
      expect(shed.headers.get('x-content-type-options')).toBe('nosniff')
      expect(await shed.json()).toEqual({ error: 'overloaded', message: 'The gateway is overloaded; try again shortly' })
      const health = await fetch(`${stack.publicUrl}/healthz`)
      expect(health.status).toBe(200)
      expect(await health.json()).toEqual({ status: 'ok' })
    } finally {
      stop()
    }

    await vi.waitFor(async () => expect((await orders('after')).status).toBe(200), { timeout: 5000, interval: 100 })
    const forwarded = stack.api.received.map(r => r.headers[TAG])
    expect(forwarded).toContain('before')
    expect(forwarded).toContain('after')
    expect(forwarded).not.toContain('shed')
  })
})
