/**
 * Restarts under load.
 *
 * Behind HAProxy (the issue's acceptance): two gateway processes, each
 * restarted in turn with SIGTERM and started again, while a steady load of
 * signed-in API requests goes through the balancer. The shutdown sequence
 * (readiness fails, the listener serves on for SHUTDOWN_DELAY, then closes)
 * lets the balancer take the instance out of rotation before it stops
 * accepting: not one request fails, and the balancer never has to retry.
 *
 * An immediate close (`gateway.close()`, no delay) of an in-process instance:
 * a minimal load balancer in front opens one connection per request and, like
 * nginx's `proxy_next_upstream error`, sends a GET to the other instance when
 * its connection was refused, or reset before any answer (a connection still
 * in the kernel's accept queue, or accepted but not yet read, when the
 * listener closes: the request was never processed, but only an idempotent
 * one may be sent again on that guess, RFC 9112 §9.3.1). The requests in
 * flight on the closing instance are drained.
 */
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { freePort } from '../helpers/free-port.js'
import { startProcessStack, type ProcessStack } from './process-stack.js'
import { startLoadBalancer, type LoadBalancer } from './haproxy.js'
import { arrivedAt, send, steadyLoad, tally, TAG_HEADER, until } from './traffic.js'

describe('rolling restart of gateway processes behind HAProxy', () => {
  const SHUTDOWN_DELAY_S = 3
  const CHECK_INTERVAL_MS = 250
  /** Bounds of the load: at most this many requests, each loop pausing between its requests. */
  const MAX_REQUESTS = 20_000
  const PAUSE_MS = 5
  const names = ['gateway-0', 'gateway-1']

  let stack: ProcessStack
  let balancer: LoadBalancer
  let user: SignedInUser
  beforeAll(async () => {
    const port = await freePort()
    stack = await startProcessStack({
      instances: 2,
      publicUrl: `http://127.0.0.1:${port}`,
      gatewayEnv: { SHUTDOWN_DELAY: String(SHUTDOWN_DELAY_S), SHUTDOWN_TIMEOUT: '10' },
    })
    balancer = await startLoadBalancer({
      port,
      checkIntervalMs: CHECK_INTERVAL_MS,
      servers: stack.gateways.map((gateway, index) => ({ name: names[index]!, port: Number(new URL(gateway.url).port), adminPort: stack.adminPorts[index]! })),
    })
    await balancer.waitUntilUp(names)
    user = await signIn(balancer.url)
  })
  afterAll(async () => {
    await balancer?.close()
    await stack?.close()
  })

  it('loses no request while each instance is restarted in turn with SIGTERM, and the balancer never retries', async () => {
    const startedAt = Date.now()
    const load = steadyLoad(async (i) => {
      const outcome = await send(`${balancer.url}${i % 4 === 0 ? '/api/slow?ms=300' : '/api/orders'}`, { headers: { cookie: user.cookie }, timeoutMs: 10_000 })
      await new Promise(resolve => setTimeout(resolve, PAUSE_MS))
      return outcome
    }, 8)
    const restarts: string[] = []
    try {
      expect(await until(() => load.outcomes.length >= 100, 10_000)).toBe(true)
      for (const [index, name] of names.entries()) {
        const signalledAt = Date.now()
        const exitCode = await stack.gateways[index]!.stop()
        const exitedAt = Date.now()
        expect(exitCode).toBe(0)
        await stack.startGateway(index)
        await balancer.waitUntilUp([name])
        // Back in rotation: it serves again.
        const sentBefore = (await balancer.servers()).find(s => s.name === name)!.sent
        expect(await until(async () => (await balancer.servers()).find(s => s.name === name)!.sent >= sentBefore + 20, 10_000, 50)).toBe(true)
        restarts.push(`${name}: exited ${exitedAt - signalledAt} ms after SIGTERM, back in rotation ${Date.now() - exitedAt} ms later`)
        expect(load.outcomes.length).toBeLessThan(MAX_REQUESTS)
      }
    } finally {
      await load.stop()
    }

    const outcomes = load.outcomes
    expect(tally(outcomes)).toEqual({ 200: outcomes.length })
    expect(outcomes.length).toBeGreaterThanOrEqual(500)
    // Each request reached the upstream exactly once.
    expect(arrivedAt(stack.api, outcomes).length).toBe(outcomes.length)
    const tags = stack.api.received.map(r => r.headers[TAG_HEADER])
    expect(tags.length).toBe(new Set(tags).size)
    // The balancer saw no failed connection or answer, and had nothing to retry or send elsewhere.
    const servers = await balancer.servers()
    for (const server of servers) {
      expect(server, server.name).toMatchObject({ connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, http5xx: 0 })
    }
    console.info(`[faults] rolling restart behind HAProxy: ${outcomes.length} requests in ${Date.now() - startedAt} ms, all 200; ` +
      `${restarts.join('; ')}; sent per instance: ${servers.map(s => `${s.name} ${s.sent}`).join(', ')}`)
  })
})

describe('immediate close of an in-process instance under load', () => {
  const SLOW_MS = 800

  interface Routed {
    tag: string
    path: string
    /** The instance that answered (or last tried). */
    instance: number
    /** Instances tried first whose connection was refused or reset unanswered. */
    failedOver: Array<{ instance: number, error: string }>
    startedAt: number
    endedAt: number
    status: number
    networkError?: string
  }

  let stack: Stack
  let user: SignedInUser
  beforeAll(async () => {
    stack = await startStack({ instances: 2 })
    user = await signIn(stack.publicUrl)
  })
  afterAll(async () => { await stack?.close() })

  let sequence = 0
  /** Tag → the instance a request is being sent to right now. */
  const attempting = new Map<string, number>()

  /** One request on a fresh connection to one instance; 0 and the error code when no answer came. */
  function attempt (instance: number, path: string, tag: string): Promise<{ status: number, error?: string }> {
    const { port } = new URL(stack.gateways[instance]!.url)
    return new Promise(resolve => {
      const request = httpRequest({
        host: '127.0.0.1',
        port: Number(port),
        path,
        agent: false,
        headers: { cookie: user.cookie, [TAG_HEADER]: tag },
        timeout: 10_000,
      }, response => {
        response.resume()
        response.once('end', () => resolve({ status: response.statusCode ?? 0 }))
        response.once('error', (error: NodeJS.ErrnoException) => resolve({ status: 0, error: error.code ?? error.message }))
      })
      request.once('timeout', () => request.destroy(new Error('client timeout')))
      request.once('error', (error: NodeJS.ErrnoException) => resolve({ status: 0, error: error.code ?? error.message }))
      request.end()
    })
  }

  const FAIL_OVER = new Set(['ECONNREFUSED', 'ECONNRESET'])

  /** Round robin over the two instances; a GET whose fresh connection failed unanswered goes to the other one. */
  async function balanced (path: string): Promise<Routed> {
    const tag = `lb-${++sequence}`
    const first = sequence % 2
    const startedAt = Date.now()
    const failedOver: Routed['failedOver'] = []
    let last: Routed | undefined
    for (const instance of [first, 1 - first]) {
      attempting.set(tag, instance)
      const result = await attempt(instance, path, tag)
      attempting.delete(tag)
      last = { tag, path, instance, failedOver, startedAt, endedAt: Date.now(), status: result.status, ...(result.error ? { networkError: result.error } : {}) }
      if (result.status !== 0 || !FAIL_OVER.has(result.error ?? '')) break
      failedOver.push({ instance, error: result.error! })
    }
    return last!
  }

  function tallyFailOver (outcomes: readonly Routed[]): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const { error } of outcomes.flatMap(o => o.failedOver)) counts[error] = (counts[error] ?? 0) + 1
    return counts
  }

  it('drains requests in flight on the closing instance, sends new ones to the other without a single error, and the sessions survive the restart', async () => {
    const outcomes: Routed[] = []
    const load = { running: true }
    const loop = async (path: string) => {
      while (load.running) outcomes.push(await balanced(path))
    }
    const loops = [
      ...Array.from({ length: 6 }, () => loop('/api/orders')),
      ...Array.from({ length: 4 }, () => loop(`/api/slow?ms=${SLOW_MS}`)),
    ]
    const stopLoad = async () => {
      load.running = false
      await Promise.all(loops)
    }
    try {
      expect(await until(() => outcomes.filter(o => o.status === 200 && o.path.startsWith('/api/slow')).length >= 4, 15_000)).toBe(true)

      // Close instance 0 while slow requests it forwarded are at the upstream.
      const inFlightOnZero = () => {
        const atUpstream = new Set(stack.api.received.filter(r => r.url.startsWith('/slow')).map(r => r.headers[TAG_HEADER]))
        return [...attempting].filter(([tag, instance]) => instance === 0 && atUpstream.has(tag)).map(([tag]) => tag)
      }
      await until(() => inFlightOnZero().length > 0, 5000, 5)
      const inFlightTags = inFlightOnZero()
      const closeStartedAt = Date.now()
      await stack.gateways[0]!.close()
      const closedAt = Date.now()

      // Instance 1 alone for a while: every new request lands there.
      const aloneFrom = outcomes.length
      await until(() => outcomes.length - aloneFrom >= 60, 15_000)
      const restartAt = Date.now()
      await stack.restartGateway(0)
      const restartedAt = Date.now()
      await until(() => outcomes.some(o => o.startedAt >= restartedAt && o.instance === 0 && o.status === 200), 10_000)
      await until(() => outcomes.filter(o => o.startedAt >= restartedAt).length >= 40, 10_000)
      await stopLoad()

      // Not a single error, anywhere, on either instance.
      const failed = outcomes.filter(o => o.status !== 200)
      expect(failed).toEqual([])
      // The requests in flight on instance 0 when it began to close were completed, not cut.
      const drained = outcomes.filter(o => inFlightTags.includes(o.tag))
      expect(drained.length).toBe(inFlightTags.length)
      expect(drained.length).toBeGreaterThanOrEqual(1)
      for (const o of drained) {
        expect(o).toMatchObject({ instance: 0, status: 200 })
        expect(o.endedAt).toBeGreaterThanOrEqual(closeStartedAt)
      }
      // Closing waited for them (and no longer than needed).
      expect(closedAt - closeStartedAt).toBeLessThan(SLOW_MS + 2000)
      // While 0 was down, instance 1 served everything; only connections to 0 failed over, and nothing reached the upstream twice.
      const whileDown = outcomes.filter(o => o.startedAt > closedAt && o.endedAt < restartAt)
      expect(whileDown.length).toBeGreaterThanOrEqual(30)
      expect(whileDown.every(o => o.instance === 1)).toBe(true)
      const rerouted = outcomes.filter(o => o.failedOver.length > 0)
      expect(rerouted.every(o => o.failedOver.length === 1 && o.failedOver[0]!.instance === 0)).toBe(true)
      const tags = stack.api.received.map(r => r.headers[TAG_HEADER])
      expect(tags.length).toBe(new Set(tags).size)
      // Back in rotation, with the same session (it lives in Redis, not in the instance).
      const afterRestart = outcomes.filter(o => o.startedAt >= restartedAt)
      expect(afterRestart.some(o => o.instance === 0)).toBe(true)
      const me = await fetch(`${stack.gateways[0]!.url}/bff/user`, { headers: { cookie: user.cookie } })
      expect(me.status).toBe(200)

      console.info(`[faults] rolling restart: ${outcomes.length} requests, 0 errors; ${drained.length} in flight on instance 0 drained ` +
        `(close took ${closedAt - closeStartedAt} ms); ${whileDown.length} served by instance 1 alone; failed over: ${JSON.stringify(tallyFailOver(rerouted))}`)
    } finally {
      if (load.running) await stopLoad()
    }
  })
})
