/**
 * Route policy reload (docs/operations.md#route-policy-reload): `POST
 * /admin/routes/reload` on an in-process gateway and `SIGHUP` to a gateway
 * process re-read ROUTES_FILE. A valid policy applies to the next request; an
 * invalid one is refused with the start-up lines and the old one keeps
 * working; a request in flight finishes under the policy it started with;
 * `GET /admin/routes` shows the policy in force and the hash of its file.
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { captureLogLines } from '../helpers/log-lines.js'
import { freePort } from '../helpers/free-port.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { gatewayClient, TEST_ADMIN_TOKEN, type RoutePolicyJson } from '../helpers/gateway.js'
import { startIdentityProvider, type IdentityProvider } from '../../upstream-mock/idp.js'
import { loadRoutePolicy } from '../../gateway/proxy/route-policy.js'
import { ConfigError } from '../../gateway/config.js'
import { runAdminCommand } from '../../gateway/admin/admin-commands.js'
import { startGatewayProcess, type GatewayProcess } from '../faults/gateway-process.js'

/** A plain upstream that says who it is; `/held` is answered only once the test lets go of it. */
interface NamedUpstream {
  readonly url: string
  /** Paths received, in order. */
  readonly paths: string[]
  /** Resolves when a `/held` request has arrived; answer it with `release()`. */
  heldArrival (): Promise<void>
  release (): void
  close (): Promise<void>
}

async function startNamedUpstream (name: string): Promise<NamedUpstream> {
  const paths: string[] = []
  const held: ServerResponse[] = []
  let arrived: (() => void) | undefined
  const answer = (response: ServerResponse, path: string) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ upstream: name, path }))
  }
  const server = createServer((request: IncomingMessage, response) => {
    const path = request.url ?? ''
    paths.push(path)
    request.resume()
    if (path !== '/held') {
      answer(response, path)
      return
    }
    held.push(response)
    arrived?.()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    heldArrival: () => new Promise<void>(resolve => { arrived = resolve }),
    release () { for (const response of held.splice(0)) answer(response, '/held') },
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** The start-up policy: `/api` (orders for users, reports for admins, a held path) and `/legacy`, on `upstream`. */
function startPolicy (upstream: string): RoutePolicyJson {
  return {
    routes: [
      {
        prefix: '/api',
        upstream,
        allow: [
          { methods: ['GET'], path: '/orders', roles: ['user'] },
          { methods: ['GET'], path: '/reports', roles: ['admin'] },
          { methods: ['GET'], path: '/held', roles: ['user'] },
        ],
      },
      { prefix: '/legacy', upstream, allow: [{ methods: ['GET'], path: '/x', roles: ['user'] }] },
    ],
  }
}

/** `policy` with `change` applied to its `/api` route (a copy). */
function withApi (policy: RoutePolicyJson, change: (route: Record<string, unknown>) => Record<string, unknown>): RoutePolicyJson {
  return { routes: policy.routes.map(route => route.prefix === '/api' ? change(structuredClone(route)) : route) }
}

const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const operator = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

/** Polls `probe` until it returns `expected`, for at most `withinMs`; resolves with the last value. */
async function eventually<T> (probe: () => Promise<T>, expected: T, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs
  let value = await probe()
  while (value !== expected && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 25))
    value = await probe()
  }
  return value
}

describe('route policy reload on an in-process gateway', () => {
  let stack: Stack
  let first: NamedUpstream
  let second: NamedUpstream
  let alice: SignedInUser
  let routesFile: string
  let adminUrl: string
  const { lines: logLines, stream: logStream } = captureLogLines()

  beforeAll(async () => {
    first = await startNamedUpstream('first')
    second = await startNamedUpstream('second')
    stack = await startStack({ store: 'memory', policy: () => startPolicy(first.url), deps: { logStream }, gatewayEnv: { LOG_LEVEL: 'info' } })
    routesFile = stack.gateway.config.routesFile
    adminUrl = stack.gateway.adminUrl
    alice = await signIn(stack.publicUrl)
  })
  afterAll(async () => {
    await stack?.close()
    await first?.close()
    await second?.close()
  })

  const writePolicy = (policy: RoutePolicyJson | string) =>
    writeFile(routesFile, typeof policy === 'string' ? policy : JSON.stringify(policy, null, 2))
  const reload = async () => {
    const response = await fetch(`${adminUrl}/admin/routes/reload`, { method: 'POST', headers: operator })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  }
  const inForce = async () => await (await fetch(`${adminUrl}/admin/routes`, { headers: operator })).json() as { sha256: string, routes: unknown[] }
  const get = async (path: string, user: SignedInUser | null = alice) => {
    const response = await fetch(`${stack.publicUrl}${path}`, { headers: user ? { cookie: user.cookie } : {} })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  }
  const statusOf = async (path: string) => (await get(path)).status
  const reloadCount = async (reason: string) => {
    const text = await (await fetch(`${adminUrl}/metrics`, { headers: operator })).text()
    return Number(new RegExp(`^bff_audit_events_total\\{event="route_policy_reload",reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  }

  // Every case starts from the start-up policy, whatever the one before left in force.
  beforeEach(async () => {
    await writePolicy(startPolicy(first.url))
    expect((await reload()).status).toBe(200)
    first.paths.length = 0
    second.paths.length = 0
  })

  describe('POST /admin/routes/reload', () => {
    it('a role added to a rule: the next request passes (403 → 200) within a second', async () => {
      expect(await statusOf('/api/reports')).toBe(403)
      await writePolicy(withApi(startPolicy(first.url), route => ({
        ...route,
        allow: (route.allow as Array<Record<string, unknown>>).map(rule => rule.path === '/reports' ? { ...rule, roles: ['admin', 'user'] } : rule),
      })))
      const reloaded = await reload()
      expect(reloaded).toMatchObject({ status: 200, body: { result: 'applied' } })
      expect(await eventually(() => statusOf('/api/reports'), 200, 1000)).toBe(200)
      expect(first.paths).toEqual(['/reports'])
    })

    it('a rule removed: the next request is refused (200 → 403), and nothing is forwarded', async () => {
      expect(await statusOf('/api/orders')).toBe(200)
      await writePolicy(withApi(startPolicy(first.url), route => ({
        ...route,
        allow: (route.allow as Array<Record<string, unknown>>).filter(rule => rule.path !== '/orders'),
      })))
      expect((await reload()).body).toMatchObject({ result: 'applied' })
      expect(await eventually(() => statusOf('/api/orders'), 403, 1000)).toBe(403)
      expect(first.paths).toEqual(['/orders'])
    })

    it('a route\'s upstream changed: the next request goes to the new one', async () => {
      await writePolicy(withApi(startPolicy(first.url), route => ({ ...route, upstream: second.url })))
      expect((await reload()).body).toMatchObject({ result: 'applied' })
      expect((await get('/api/orders')).body).toEqual({ upstream: 'second', path: '/orders' })
      expect(first.paths).toEqual([])
    })

    it('the same file again: 200 unchanged, with the hash in force', async () => {
      const { sha256 } = await inForce()
      expect(await reload()).toEqual({ status: 200, body: { result: 'unchanged', sha256, previousSha256: sha256 } })
    })

    it.each([
      ['not valid as a policy', JSON.stringify({ routes: [{ prefix: 'api', upstream: 'ftp://x', allow: [] }] })],
      ['not JSON', '{ "routes": ['],
    ])('a file %s: 400 invalid_route_policy with the start-up lines; the old policy keeps working', async (_case, text) => {
      const before = await inForce()
      await writePolicy(text)
      const startUpLines = await loadRoutePolicy(routesFile).then(() => [], (error: ConfigError) => error.problems)
      expect(startUpLines.length).toBeGreaterThan(0)
      const refused = await reload()
      expect(refused.status).toBe(400)
      expect(refused.body).toEqual({ error: 'invalid_route_policy', message: expect.any(String), problems: startUpLines })
      expect(await statusOf('/api/orders')).toBe(200)
      expect(await inForce()).toEqual(before)
    })

    it('a prefix this process was not started with: refused, saying a restart is needed', async () => {
      const policy = startPolicy(first.url)
      await writePolicy({ routes: [...policy.routes, { prefix: '/billing', upstream: first.url, allow: [{ methods: ['GET'], path: '/x', roles: ['user'] }] }] })
      const refused = await reload()
      expect(refused.status).toBe(400)
      expect(refused.body.problems).toEqual(['ROUTES_FILE: routes[2].prefix: "/billing" is not served by this process; adding a prefix needs a restart'])
      expect(await statusOf('/billing/x')).toBe(404)
      expect(first.paths).toEqual([])
    })

    it('WebSockets turned on for a prefix started without them: refused, saying a restart is needed', async () => {
      await writePolicy(withApi(startPolicy(first.url), route => ({ ...route, websocket: true })))
      const refused = await reload()
      expect(refused.status).toBe(400)
      expect(refused.body.problems).toEqual(['ROUTES_FILE: routes[0].websocket: "/api" was started without WebSockets; turning them on needs a restart'])
    })

    it('a prefix removed: 404 not_found from then on, signed in or not, nothing forwarded; it may come back', async () => {
      expect(await statusOf('/legacy/x')).toBe(200)
      const policy = startPolicy(first.url)
      await writePolicy({ routes: policy.routes.filter(route => route.prefix !== '/legacy') })
      expect((await reload()).body).toMatchObject({ result: 'applied' })
      first.paths.length = 0
      for (const user of [alice, null]) {
        const gone = await get('/legacy/x', user)
        expect(gone).toMatchObject({ status: 404, body: { error: 'not_found' } })
      }
      expect(first.paths).toEqual([])
      await writePolicy(policy)
      expect((await reload()).body).toMatchObject({ result: 'applied' })
      expect(await statusOf('/legacy/x')).toBe(200)
    })

    it('needs the admin token: 401 without it, and nothing is reloaded', async () => {
      const response = await fetch(`${adminUrl}/admin/routes/reload`, { method: 'POST' })
      expect(response.status).toBe(401)
      expect((await (await fetch(`${adminUrl}/admin/routes`)).json())).toMatchObject({ error: 'unauthenticated' })
    })
  })

  describe('a request in flight during a reload', () => {
    it('finishes normally under the policy it started with; the next one meets the new policy', async () => {
      const arrival = first.heldArrival()
      const inFlight = get('/api/held')
      await arrival
      // The new policy forbids that path and sends the route elsewhere.
      await writePolicy(withApi(startPolicy(first.url), route => ({
        ...route,
        upstream: second.url,
        allow: (route.allow as Array<Record<string, unknown>>).filter(rule => rule.path !== '/held'),
      })))
      expect((await reload()).body).toMatchObject({ result: 'applied' })
      first.release()
      expect(await inFlight).toEqual({ status: 200, body: { upstream: 'first', path: '/held' } })
      expect(await statusOf('/api/held')).toBe(403)
      expect((await get('/api/orders')).body).toEqual({ upstream: 'second', path: '/orders' })
    })
  })

  describe('GET /admin/routes', () => {
    it('shows the routes as the file has them and the SHA-256 of its bytes; both follow a reload', async () => {
      const before = await inForce()
      expect(before).toEqual({ sha256: sha256Of(await readFile(routesFile)), routes: startPolicy(first.url).routes })
      const changed = withApi(startPolicy(first.url), route => ({ ...route, timeoutMs: 5000 }))
      await writePolicy(changed)
      const reloaded = await reload()
      const after = await inForce()
      expect(after).toEqual({ sha256: sha256Of(await readFile(routesFile)), routes: changed.routes })
      expect(after.sha256).not.toBe(before.sha256)
      expect(reloaded.body).toEqual({ result: 'applied', sha256: after.sha256, previousSha256: before.sha256 })
    })
  })

  describe('audit', () => {
    it('one event per reload: who, the hash before and after, and the result as its reason', async () => {
      const counts = async () => Promise.all(['applied', 'unchanged', 'refused'].map(reloadCount))
      const [applied, unchanged, refused] = await counts()
      const { sha256: start } = await inForce()
      const changed = withApi(startPolicy(first.url), route => ({ ...route, timeoutMs: 7000 }))
      await writePolicy(changed)
      await reload()
      const { sha256: next } = await inForce()
      await reload()
      await writePolicy('not json')
      await reload()
      expect(await counts()).toEqual([applied! + 1, unchanged! + 1, refused! + 1])
      const events = logLines.filter(line => line.audit === 'route_policy_reload').slice(-3)
      expect(events).toMatchObject([
        { reason: 'applied', by: 'admin', before: start, after: next },
        { reason: 'unchanged', by: 'admin', before: next, after: next },
        { reason: 'refused', by: 'admin', before: next, after: next, problems: 1 },
      ])
    })
  })

  describe('admin CLI: routes, routes reload', () => {
    it('shows the policy in force, reloads it, and prints the lines of a refused file', async () => {
      const lines: string[] = []
      const print = (line: string) => lines.push(line)
      const saved = { ADMIN_URL: process.env.ADMIN_URL, ADMIN_TOKEN: process.env.ADMIN_TOKEN }
      Object.assign(process.env, { ADMIN_URL: adminUrl, ADMIN_TOKEN: TEST_ADMIN_TOKEN })
      try {
        const { sha256 } = await inForce()
        await runAdminCommand(['routes'], print)
        expect(lines.at(-1)).toBe(`sha256 ${sha256}\n${JSON.stringify({ routes: startPolicy(first.url).routes }, null, 2)}`)
        await runAdminCommand(['routes', 'reload'], print)
        expect(lines.at(-1)).toBe(`unchanged: sha256 ${sha256}`)
        await writePolicy(withApi(startPolicy(first.url), route => ({ ...route, timeoutMs: 9000 })))
        await runAdminCommand(['routes', 'reload'], print)
        expect(lines.at(-1)).toBe(`applied: sha256 ${sha256} -> ${(await inForce()).sha256}`)
        await writePolicy({ routes: [] })
        await expect(runAdminCommand(['routes', 'reload'], print)).rejects.toThrow(
          /^POST \/admin\/routes\/reload: 400 invalid_route_policy .*\nROUTES_FILE: routes: must list at least one route$/)
      } finally {
        Object.assign(process.env, saved)
        for (const [k, v] of Object.entries(saved)) if (v === undefined) Reflect.deleteProperty(process.env, k)
      }
    })
  })
})

describe('route policy reload on SIGHUP (a gateway process)', () => {
  let redis: RedisServer
  let idp: IdentityProvider
  let upstream: NamedUpstream
  let gateway: GatewayProcess

  beforeAll(async () => {
    const port = await freePort()
    const publicUrl = `http://127.0.0.1:${port}`
    redis = await startRedisServer()
    idp = await startIdentityProvider({ clients: [gatewayClient(publicUrl)] })
    upstream = await startNamedUpstream('first')
    gateway = await startGatewayProcess({ port, publicUrl, issuer: idp.issuer, redisUrl: redis.url, policy: startPolicy(upstream.url) })
  })
  afterAll(async () => {
    await gateway?.stop()
    await upstream?.close()
    await idp?.close()
    await redis?.close()
  })

  it('applies a valid file within a second, refuses an invalid one (logging its lines), and keeps running', async () => {
    const alice = await signIn(gateway.url)
    const statusOf = async (path: string) => (await fetch(`${gateway.url}${path}`, { headers: { cookie: alice.cookie } })).status
    const inForce = async () => await (await fetch(`${gateway.adminUrl}/admin/routes`, { headers: operator })).json() as { sha256: string }
    expect(await statusOf('/api/reports')).toBe(403)

    await writeFile(gateway.routesFile, JSON.stringify(withApi(startPolicy(upstream.url), route => ({
      ...route,
      allow: (route.allow as Array<Record<string, unknown>>).map(rule => rule.path === '/reports' ? { ...rule, roles: ['user'] } : rule),
    }))))
    gateway.signal('SIGHUP')
    expect(await eventually(() => statusOf('/api/reports'), 200, 1000)).toBe(200)
    const applied = sha256Of(await readFile(gateway.routesFile))
    expect((await inForce()).sha256).toBe(applied)

    await writeFile(gateway.routesFile, JSON.stringify({ routes: [] }))
    gateway.signal('SIGHUP')
    const line = 'ROUTES_FILE: routes: must list at least one route'
    expect(await eventually(async () => gateway.output().includes(line), true, 5000)).toBe(true)
    expect(await statusOf('/api/reports')).toBe(200)
    expect((await inForce()).sha256).toBe(applied)
  })
})
