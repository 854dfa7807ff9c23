/**
 * Upstreams that are down, slow, or reset connections: the client gets a
 * JSON 502 / 504 within the route's timeout, other upstreams keep answering,
 * and no request is ever sent twice (each one is counted where it arrives).
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { freePort, REFUSED_PORT } from '../helpers/free-port.js'
import { startUpstreamApi, type UpstreamApi } from '../../upstream-mock/api.js'
import { arrivedAt, percentile, send, tally, TAG_HEADER, until, type Outcome } from './traffic.js'

const ROUTE_TIMEOUT_MS = 1000

interface CountingServer {
  url: string
  /** Tags of the requests that arrived, in order. */
  arrivals: string[]
  close (): Promise<void>
}

/** Accepts, reads the request head, counts it, and answers with a TCP reset. */
async function startResettingServer (port: number): Promise<CountingServer> {
  const arrivals: string[] = []
  const sockets = new Set<Socket>()
  const server = createTcpServer(socket => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let head = ''
    socket.on('data', chunk => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      arrivals.push(new RegExp(`^${TAG_HEADER}: *(\\S+)`, 'im').exec(head)?.[1] ?? 'untagged')
      head = ''
      socket.resetAndDestroy()
    })
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise(resolve => server.close(resolve))
    },
  }
}

/** Counts every request and never answers it. */
async function startHangingServer (port: number): Promise<CountingServer> {
  const arrivals: string[] = []
  const server = createHttpServer((request: IncomingMessage) => {
    const tag = request.headers[TAG_HEADER]
    arrivals.push(typeof tag === 'string' ? tag : 'untagged')
    request.resume()
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    async close () {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    },
  }
}

let stack: Stack
let other: UpstreamApi
let resetting: CountingServer
let hanging: CountingServer
let user: SignedInUser
let url: string

beforeAll(async () => {
  const [otherPort, resetPort, hangPort] = await Promise.all([freePort(), freePort(), freePort()])
  resetting = await startResettingServer(resetPort)
  hanging = await startHangingServer(hangPort)
  const thing = [{ methods: ['GET', 'POST'], path: '/thing', roles: ['user'] }]
  stack = await startStack({
    policy: (upstream) => ({
      routes: [
        {
          prefix: '/api',
          upstream,
          timeoutMs: ROUTE_TIMEOUT_MS,
          allow: [
            { methods: ['GET', 'POST'], path: '/orders', roles: ['user'] },
            { methods: ['GET'], path: '/slow', roles: ['user'] },
          ],
        },
        { prefix: '/other', upstream: `http://127.0.0.1:${otherPort}`, allow: [{ methods: ['GET'], path: '/orders', roles: ['user'] }] },
        { prefix: '/reset', upstream: resetting.url, allow: thing },
        { prefix: '/hang', upstream: hanging.url, timeoutMs: ROUTE_TIMEOUT_MS, allow: thing },
        // Nothing listens there: connection refused.
        { prefix: '/nowhere', upstream: `http://127.0.0.1:${REFUSED_PORT}`, allow: thing },
      ],
    }),
  })
  // The second API trusts the same IdP and audience, behind its own prefix.
  other = await startUpstreamApi({ issuer: stack.idp.issuer, audience: stack.idp.apiAudience, port: otherPort })
  url = stack.publicUrl
  user = await signIn(url)
})
afterAll(async () => {
  await stack?.close()
  await other?.close()
  await resetting?.close()
  await hanging?.close()
})

const get = (path: string) => send(`${url}${path}`, { headers: { cookie: user.cookie } })
const post = (path: string) => send(`${url}${path}`, {
  method: 'POST',
  headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken, 'content-type': 'application/json' },
  body: JSON.stringify({ item: 'widget' }),
})

/** Requests to the healthy upstream, one after the other, while `during` runs. */
async function otherRouteWhile (during: Promise<unknown>): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const state = { done: false }
  during.then(() => { state.done = true }, () => { state.done = true })
  while (!state.done || outcomes.length < 5) outcomes.push(await get('/other/orders'))
  return outcomes
}

/** A 5xx body names the failure by its code only: no upstream address, no socket error. */
function expectOpaque (outcomes: readonly Outcome[]): void {
  for (const o of outcomes) {
    expect(o.contentType).toMatch(/^application\/json/)
    expect(o.body).not.toMatch(/127\.0\.0\.1|ECONN|UND_ERR|socket|localhost/i)
  }
}

describe('an upstream that is down', () => {
  it('answers 502 bad_gateway for its routes while another upstream keeps answering; serves again once it is back', async () => {
    await stack.api.stop()
    let down: Outcome[] = []
    let meanwhile: Outcome[]
    try {
      const failing = (async () => {
        for (let i = 0; i < 10; i++) down.push(await (i % 2 ? post('/api/orders') : get('/api/orders')))
      })()
      meanwhile = await otherRouteWhile(failing)
      await failing
      down = [...down, await post('/nowhere/thing')]
    } finally {
      await stack.api.start()
    }
    expect(tally(down)).toEqual({ '502 bad_gateway': 11 })
    expectOpaque(down)
    expect(tally(meanwhile)).toEqual({ 200: meanwhile.length })
    expect(arrivedAt(other, meanwhile)).toHaveLength(meanwhile.length)
    expect(percentile(meanwhile.map(o => o.endedAt - o.startedAt), 99)).toBeLessThan(500)

    const back = await get('/api/orders')
    expect(back.status).toBe(200)
    expect(arrivedAt(stack.api, [back])).toHaveLength(1)
    // The session never noticed.
    expect((await get('/bff/user')).status).toBe(200)
    console.info(`[faults] upstream down: 11 requests → 502 in ≤ ${Math.max(...down.map(o => o.endedAt - o.startedAt))} ms; ` +
      `${meanwhile.length} requests to the other upstream meanwhile, all 200`)
  })
})

describe('a slow upstream', () => {
  it('answers 504 gateway_timeout after the route timeout, not later, and other upstreams answer at normal speed meanwhile', async () => {
    const slow = Promise.all([get('/api/slow?ms=5000'), get('/api/slow?ms=5000')])
    const meanwhile = await otherRouteWhile(slow)
    const timedOut = await slow
    expect(tally(timedOut)).toEqual({ '504 gateway_timeout': 2 })
    expectOpaque(timedOut)
    for (const o of timedOut) {
      expect(o.endedAt - o.startedAt).toBeGreaterThanOrEqual(ROUTE_TIMEOUT_MS - 50)
      expect(o.endedAt - o.startedAt).toBeLessThan(ROUTE_TIMEOUT_MS + 1500)
    }
    // Each reached the upstream exactly once.
    expect(stack.api.received.filter(r => timedOut.some(o => o.tag === r.headers[TAG_HEADER]))).toHaveLength(2)
    expect(tally(meanwhile)).toEqual({ 200: meanwhile.length })
    expect(percentile(meanwhile.map(o => o.endedAt - o.startedAt), 99)).toBeLessThan(500)
    console.info(`[faults] slow upstream: 504 after ${timedOut.map(o => o.endedAt - o.startedAt).join(' / ')} ms (route timeout ${ROUTE_TIMEOUT_MS} ms); ` +
      `${meanwhile.length} requests to the other upstream meanwhile, p99 ${percentile(meanwhile.map(o => o.endedAt - o.startedAt), 99)} ms`)
  })

  it('never re-sends a POST that timed out', async () => {
    const before = hanging.arrivals.length
    const outcome = await post('/hang/thing')
    expect(outcome).toMatchObject({ status: 504, error: 'gateway_timeout' })
    expect(hanging.arrivals.slice(before)).toEqual([outcome.tag])
    // A late retry would arrive within the next moments; none does.
    expect(await until(() => hanging.arrivals.length > before + 1, 1000)).toBe(false)
  })
})

describe('an upstream that resets connections', () => {
  it('answers 502 bad_gateway, sends each request exactly once (POST and GET alike), and other upstreams are unaffected', async () => {
    const before = resetting.arrivals.length
    const failing = (async () => {
      const outcomes: Outcome[] = []
      for (let i = 0; i < 10; i++) outcomes.push(await (i % 2 ? get('/reset/thing') : post('/reset/thing')))
      return outcomes
    })()
    const meanwhile = await otherRouteWhile(failing)
    const reset = await failing
    expect(tally(reset)).toEqual({ '502 bad_gateway': 10 })
    expectOpaque(reset)
    expect(resetting.arrivals.slice(before)).toEqual(reset.map(o => o.tag))
    expect(tally(meanwhile)).toEqual({ 200: meanwhile.length })
    expect((await get('/api/orders')).status).toBe(200)
    console.info(`[faults] resetting upstream: 10 requests → 502, ${resetting.arrivals.length - before} arrivals (no retries); ` +
      `${meanwhile.length} requests to the other upstream meanwhile, all 200`)
  })
})
