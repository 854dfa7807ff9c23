/**
 * The shutdown sequence of a real gateway process (the contract's
 * "Operations"): on SIGTERM, `/readyz` fails at once; the public listener goes
 * on serving for SHUTDOWN_DELAY, every answer closing its connection; then new
 * connections are refused while requests in flight finish, and the process
 * exits 0; requests still in flight SHUTDOWN_TIMEOUT later make it exit 1. A
 * fatal error takes the same way out, with exit code 1.
 */
import { Agent, request as httpRequest } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { startProcessStack, type ProcessStack } from './process-stack.js'
import { TAG_HEADER, until } from './traffic.js'

const FATAL_ON_SIGNAL = fileURLToPath(new URL('./fatal-on-signal.ts', import.meta.url))
const DELAY_MS = 2000
const TIMEOUT_MS = 5000

let stack: ProcessStack
let user: SignedInUser
beforeAll(async () => {
  stack = await startProcessStack({ gatewayEnv: { SHUTDOWN_DELAY: String(DELAY_MS / 1000), SHUTDOWN_TIMEOUT: String(TIMEOUT_MS / 1000) } })
  user = await signIn(stack.publicUrl)
})
afterAll(async () => { await stack?.close() })

interface Answer {
  status: number
  connection?: string
  /** The request went on a connection the agent had kept from an earlier one. */
  reusedSocket?: boolean
  /** The error code when no answer came (ECONNREFUSED, ECONNRESET, …). */
  error?: string
  at: number
}

let sequence = 0

/** A signed-in GET on `agent`'s connections (`false`: a fresh connection); never throws. */
function get (baseUrl: string, path: string, agent: Agent | false = false): Promise<Answer & { tag: string }> {
  const { port } = new URL(baseUrl)
  const tag = `shutdown-${++sequence}`
  return new Promise(resolve => {
    const request = httpRequest({ host: '127.0.0.1', port: Number(port), path, agent, headers: { cookie: user.cookie, [TAG_HEADER]: tag } }, response => {
      response.resume()
      response.once('end', () => resolve({
        tag,
        status: response.statusCode ?? 0,
        ...(response.headers.connection ? { connection: response.headers.connection } : {}),
        reusedSocket: request.reusedSocket,
        at: Date.now(),
      }))
      response.once('error', (error: NodeJS.ErrnoException) => resolve({ tag, status: 0, error: error.code ?? error.message, at: Date.now() }))
    })
    request.once('error', (error: NodeJS.ErrnoException) => resolve({ tag, status: 0, error: error.code ?? error.message, at: Date.now() }))
    request.end()
  })
}

const readiness = async (adminUrl: string) => (await fetch(`${adminUrl}/readyz`)).status

/** Instance 0 as the stack started it, or started afresh with `env` added and `imports` preloaded. */
async function runningGateway (env: Record<string, string> = {}, imports: string[] = []) {
  const current = stack.gateways[0]!
  if (Object.keys(env).length === 0 && imports.length === 0 && await readiness(current.adminUrl).catch(() => 0) === 200) return current
  await current.stop()
  return stack.startGateway(0, { env, imports })
}

describe('SIGTERM', () => {
  it('fails readiness at once, serves for SHUTDOWN_DELAY with Connection: close, then refuses new connections, finishes the request in flight, and exits 0', async () => {
    const gateway = await runningGateway()
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      expect(await get(gateway.url, '/api/orders', agent)).toMatchObject({ status: 200, connection: 'keep-alive' })
      const inFlight = get(gateway.url, '/api/slow?ms=3500')
      expect(await until(() => stack.api.received.some(r => r.url.startsWith('/slow')), 5000)).toBe(true)

      const signalledAt = Date.now()
      gateway.signal('SIGTERM')
      expect(await until(async () => await readiness(gateway.adminUrl) === 503, 1000, 10)).toBe(true)
      const notReadyAt = Date.now()
      expect(await (await fetch(`${gateway.adminUrl}/readyz`)).json()).toEqual({ status: 'draining' })

      // Still serving: on the connection kept from before (closed after this answer) and on new ones.
      const onKeptConnection = await get(gateway.url, '/api/orders', agent)
      expect(onKeptConnection).toMatchObject({ status: 200, connection: 'close', reusedSocket: true })
      // Then, polled on fresh connections: served (each closed after its answer) until the listener closes, refused after.
      const polls: Answer[] = []
      await until(async () => {
        polls.push(await get(gateway.url, '/api/orders'))
        return polls.at(-1)!.error === 'ECONNREFUSED'
      }, DELAY_MS + 3000, 20)
      const refused = polls.at(-1)!
      expect(refused.error).toBe('ECONNREFUSED')
      // A connection the kernel queued in the very instant the listener closed is reset: no server can
      // answer it (Linux resets a closed listener's accept queue). Only the poll right before the first
      // refusal may meet that instant; a load balancer, which stops sending during the delay, never does
      // (the rolling restart in gateway-restart.fault.ts counts no reset at all).
      const atTheClose = polls.at(-2)?.error === 'ECONNRESET' ? polls.at(-2) : undefined
      const served = polls.slice(0, atTheClose ? -2 : -1)
      if (atTheClose) expect(refused.at - atTheClose.at).toBeLessThan(200)
      expect(served.length).toBeGreaterThan(5)
      for (const poll of served) expect(poll).toMatchObject({ status: 200, connection: 'close' })
      expect(refused.at - signalledAt).toBeGreaterThanOrEqual(DELAY_MS - 20)
      expect(refused.at - signalledAt).toBeLessThan(DELAY_MS + 1500)

      // The request in flight finished after the listener closed; then the process exited 0.
      const slow = await inFlight
      expect(slow).toMatchObject({ status: 200 })
      expect(slow.at).toBeGreaterThan(refused.at)
      const exit = await gateway.exited
      expect(exit.code).toBe(0)
      expect(exit.at - signalledAt).toBeLessThan(DELAY_MS + TIMEOUT_MS)

      console.info(`[faults] shutdown: readiness failed ${notReadyAt - signalledAt} ms after SIGTERM; ${served.length} requests served on fresh ` +
        `connections during the delay; refused from ${refused.at - signalledAt} ms; the in-flight request finished at ${slow.at - signalledAt} ms; exit 0 at ${exit.at - signalledAt} ms`)
    } finally {
      agent.destroy()
    }
  })

  it('exits 1 when requests in flight are not done SHUTDOWN_TIMEOUT after the listener closed', async () => {
    const gateway = await runningGateway({ SHUTDOWN_DELAY: '1', SHUTDOWN_TIMEOUT: '1' })
    const inFlight = get(gateway.url, '/api/slow?ms=10000')
    expect(await until(() => stack.api.received.some(r => r.url === '/slow?ms=10000'), 5000)).toBe(true)
    const signalledAt = Date.now()
    gateway.signal('SIGTERM')
    const exit = await gateway.exited
    expect(exit.code).toBe(1)
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(2000 - 20)
    expect(exit.at - signalledAt).toBeLessThan(4000)
    expect(gateway.output()).toContain('shutdown timed out')
    expect((await inFlight).status).toBe(0)
  })

  it('a second SIGTERM during the delay ends the process at once, with exit code 1', async () => {
    const gateway = await runningGateway({ SHUTDOWN_DELAY: '10' })
    const signalledAt = Date.now()
    gateway.signal('SIGTERM')
    expect(await until(async () => await readiness(gateway.adminUrl) === 503, 1000, 10)).toBe(true)
    gateway.signal('SIGTERM')
    const exit = await gateway.exited
    expect(exit.code).toBe(1)
    expect(exit.at - signalledAt).toBeLessThan(2000)
  })
})

describe('a fatal error', () => {
  it('is logged, then the gateway shuts down the same way (readiness fails, the delay, the drain) and exits 1', async () => {
    const gateway = await runningGateway({ SHUTDOWN_DELAY: '1' }, [FATAL_ON_SIGNAL])
    const inFlight = get(gateway.url, '/api/slow?ms=1500')
    expect(await until(() => stack.api.received.some(r => r.url === '/slow?ms=1500'), 5000)).toBe(true)
    const failedAt = Date.now()
    gateway.signal('SIGUSR2')
    expect(await until(async () => await readiness(gateway.adminUrl) === 503, 1000, 10)).toBe(true)
    expect(await get(gateway.url, '/api/orders')).toMatchObject({ status: 200, connection: 'close' })
    expect(await inFlight).toMatchObject({ status: 200 })
    const exit = await gateway.exited
    expect(exit.code).toBe(1)
    expect(exit.at - failedAt).toBeGreaterThanOrEqual(1000 - 20)
    expect(gateway.output()).toMatch(/"level":60.*"msg":"fatal error: shutting down"/)
    expect(gateway.output()).toContain('a bug nobody caught (test)')
  })
})
