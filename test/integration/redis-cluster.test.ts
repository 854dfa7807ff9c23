/**
 * The gateway on a real three-master Redis Cluster (REDIS_CLUSTER_NODES): the
 * whole product (two gateway instances) signs in through the real IdP and
 * proxies to the real API, and a user's sessions, whose keys hash to different
 * slots on different masters, still list and revoke together. The store is
 * also checked directly: every multi-step operation stays within one slot,
 * flushes reach every master, and the connection recovers by itself from a
 * cluster that formed late or lost a master for a while. The session cache is
 * trusted only while every master answers.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { keyFor } from '../../gateway/session/keys.js'
import { createRedisConnection, waitForRedis } from '../../gateway/session/redis-client.js'
import { createRedisStore } from '../../gateway/session/redis-store.js'
import type { SessionStore, StoredSession } from '../../gateway/session/store.js'
import { createSessionCache } from '../../gateway/session/session-cache.js'
import { subscribeInvalidations } from '../../gateway/session/invalidation.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createSessionManager } from '../../gateway/session/sessions.js'

const HOUR = 3_600_000
const bytes = (text: string) => Buffer.from(text)

async function until<T> (what: string, attempt: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await attempt().catch(() => undefined)
    if (result !== undefined) return result
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function clusterStore (cluster: RedisCluster): { store: SessionStore, ready: Promise<void> } {
  const nodes = cluster.nodes.map(node => ({ host: '127.0.0.1', port: node.port }))
  const connection = createRedisConnection({ mode: 'cluster', nodes, tls: false })
  const store = createRedisStore(connection)
  onTestFinished(() => store.close())
  return { store, ready: waitForRedis(connection, 15_000) }
}

function storedSession (handle: string, sub: string): Omit<StoredSession, 'version'> {
  const now = Date.now()
  return {
    handle,
    meta: { sub, sid: `idp-${sub}`, createdAt: now, absoluteExpiresAt: now + HOUR, ip: '127.0.0.1', userAgent: 'test' },
    sealed: bytes(`sealed-${handle}`),
    lastSeenAt: now,
  }
}

/** Session handles whose keys land on every master of the cluster, `perNode` on each. */
async function handlesOnEveryMaster (cluster: RedisCluster, perNode = 2): Promise<string[]> {
  const byNode = new Map<RedisServer, string[]>(cluster.nodes.map(node => [node, []]))
  while ([...byNode.values()].some(handles => handles.length < perNode)) {
    const handle = randomBytes(12).toString('base64url')
    byNode.get(await cluster.nodeFor(keyFor.session(handle)))!.push(handle)
  }
  return [...byNode.values()].flatMap(handles => handles.slice(0, perNode))
}

async function keysOn (cluster: RedisCluster, node: RedisServer, pattern: string): Promise<string[]> {
  return cluster.client(node).keys(pattern)
}

describe('the session store on a three-master cluster', () => {
  let cluster: RedisCluster
  beforeAll(async () => { cluster = await startRedisCluster() })
  afterAll(async () => { await cluster?.close() })

  it('lists and revokes together one user\'s sessions kept on every master', async () => {
    const { store, ready } = clusterStore(cluster)
    await ready
    const handles = await handlesOnEveryMaster(cluster)
    for (const handle of handles) await store.create(storedSession(handle, 'alice'), HOUR)
    await store.create(storedSession('bobs', 'bob'), HOUR)

    for (const node of cluster.nodes) {
      expect((await keysOn(cluster, node, 'bff:{s:*}')).length).toBeGreaterThanOrEqual(2)
    }
    expect((await store.listByUser('alice')).map(s => s.handle).sort()).toEqual([...handles].sort())
    expect((await store.listBySid('idp-alice')).sort()).toEqual([...handles].sort())

    expect((await store.revokeByUser('alice', 'operator')).sort()).toEqual([...handles].sort())
    for (const handle of handles) expect(await store.get(handle)).toMatchObject({ revoked: 'operator' })
    expect(await store.listByUser('alice')).toEqual([])
    expect(await store.listBySid('idp-alice')).toEqual([])
    expect(await store.listByUser('bob')).toHaveLength(1)
    await store.destroyAll()
  })

  it('flushes every master: revokeAll and destroyAll count and reach sessions on all of them', async () => {
    const { store, ready } = clusterStore(cluster)
    await ready
    const handles = await handlesOnEveryMaster(cluster)
    for (const [i, handle] of handles.entries()) await store.create(storedSession(handle, `user-${i}`), HOUR)

    expect(await store.revokeAll('operator')).toBe(handles.length)
    for (const handle of handles) expect(await store.get(handle)).toMatchObject({ revoked: 'operator' })

    expect(await store.destroyAll()).toBe(handles.length)
    for (const node of cluster.nodes) {
      expect(await keysOn(cluster, node, 'bff:{s:*}')).toEqual([])
      expect(await keysOn(cluster, node, 'bff:{u:*}:sessions')).toEqual([])
      expect(await keysOn(cluster, node, 'bff:{sid:*}')).toEqual([])
    }
  })

  it('keeps every key family of a session, a user and a lock within one slot', async () => {
    const { store, ready } = clusterStore(cluster)
    await ready
    // Multi-key operations (the create transaction, Lua scripts) would fail with CROSSSLOT otherwise.
    await store.create(storedSession('h{1}', 'we{ird}'), HOUR)
    expect(await store.replace('h{1}', 1, { meta: storedSession('h{1}', 'we{ird}').meta, sealed: bytes('v2') }, HOUR)).toBe(true)
    await store.touch('h{1}', 42, HOUR)
    expect(await store.get('h{1}')).toMatchObject({ version: 2, sealed: bytes('v2'), lastSeenAt: 42 })
    expect(await store.acquireLock(keyFor.refreshLock('h{1}'), 'me', 5000)).toBe(true)
    expect(await store.renewLock(keyFor.refreshLock('h{1}'), 'me', 5000)).toBe(true)
    await store.releaseLock(keyFor.refreshLock('h{1}'), 'me')
    expect(await store.bumpUserEpoch('we{ird}', HOUR)).toBe(1)
    expect(await store.userEpoch('we{ird}')).toBe(1)
    expect(await store.destroy('h{1}')).toBe(true)
    expect(await store.listByUser('we{ird}')).toEqual([])
  })

  it('reads a session that is not cached with one command, the HGETALL of its hash, whichever master holds it', async () => {
    const { store, ready } = clusterStore(cluster)
    await ready
    const crypto = createSessionCrypto(['cluster-test-session-secret-0123456789-abcd'])
    const instance = () => createSessionManager({ store, crypto, idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 43_200 })
    const tokens = { accessToken: 'access', refreshToken: 'refresh', accessTokenExpiresAt: Date.now() + HOUR, claims: {}, roles: ['user'] }
    const { cookieValue } = await instance().create({ sub: 'alice', sid: 'idp-alice', ip: '127.0.0.1', userAgent: 'test' }, tokens)
    // Another instance, without a session cache: every request reads the store.
    const reader = instance()
    for (let i = 0; i < 3; i++) {
      const before = await commandCallsOn(cluster)
      expect((await reader.load(cookieValue))?.meta.sub).toBe('alice')
      const after = await commandCallsOn(cluster)
      const ran = Object.fromEntries([...after].map(([command, calls]) => [command, calls - (before.get(command) ?? 0)]).filter(([, more]) => Number(more) > 0))
      expect(ran).toEqual({ hgetall: 1 })
    }
    await store.destroyAll()
  })
})

/**
 * Calls per command summed over the masters; INFO (how we ask) and CLUSTER (the client's slot map
 * refreshes, on a timer of its own) left out.
 */
async function commandCallsOn (cluster: RedisCluster): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  for (const node of cluster.nodes) {
    for (const match of (await cluster.client(node).info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      const command = match[1]!
      if (command === 'info' || command.startsWith('cluster')) continue
      calls.set(command, (calls.get(command) ?? 0) + Number(match[2]))
    }
  }
  return calls
}

describe('a cluster connection made before the cluster is formed', () => {
  it('fails closed while there is no cluster and works once it is formed, without a restart', async () => {
    const cluster = await startRedisCluster({ form: false })
    onTestFinished(() => cluster.close())
    const { store, ready } = clusterStore(cluster)
    await expect(store.ping()).rejects.toMatchObject({ code: 'BFF_SESSION_STORE_UNAVAILABLE' })
    await expect(store.create(storedSession('early', 'alice'), HOUR)).rejects.toMatchObject({ code: 'BFF_SESSION_STORE_UNAVAILABLE' })

    await cluster.form()
    await ready
    await until('the store answers', async () => { await store.ping(); return true })
    await store.create(storedSession('late', 'alice'), HOUR)
    expect((await store.listByUser('alice')).map(s => s.handle)).toEqual(['late'])
  })
})

describe('the session cache on a cluster', () => {
  it('is not trusted while a master is down, however long, and is trusted again once it is back', async () => {
    const cluster = await startRedisCluster()
    onTestFinished(() => cluster.close())
    const connection = createRedisConnection({ mode: 'cluster', nodes: cluster.nodes.map(node => ({ host: '127.0.0.1', port: node.port })), tls: false })
    onTestFinished(() => { connection.disconnect() })
    const cache = createSessionCache({ maxEntries: 10, ttlMs: HOUR })
    const subscriber = subscribeInvalidations(connection, cache, () => {})
    onTestFinished(() => subscriber.close())
    await until('the cache is trusted', async () => cache.trusted || undefined)

    // Its slots have no other master: while it is down, writes there fail and messages can be lost.
    await cluster.nodes[1]!.stop()
    await until('the cache is distrusted', async () => !cache.trusted || undefined, 1000)
    // Heartbeats come and go: answers from the other masters do not bring trust back.
    const down = Date.now()
    while (Date.now() - down < 2500) {
      expect(cache.trusted).toBe(false)
      await new Promise(resolve => setTimeout(resolve, 50))
    }

    await cluster.nodes[1]!.start()
    await until('the cache is trusted again', async () => cache.trusted || undefined, 5000)
  })
})

describe('the gateway on a three-master cluster (REDIS_CLUSTER_NODES)', () => {
  let cluster: RedisCluster
  let stack: Stack
  // Append-only files: a master that is stopped and started again keeps its sessions.
  beforeAll(async () => {
    cluster = await startRedisCluster({ persistence: true })
    stack = await startStack({ instances: 2, redisEnv: { REDIS_CLUSTER_NODES: cluster.seeds } })
  })
  afterAll(async () => {
    await stack?.close()
    await cluster?.close()
  })

  const admin = (path: string, method = 'GET') =>
    fetch(`${stack.gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })

  const status = async (user: SignedInUser, path: string, url = stack.publicUrl) =>
    (await fetch(`${url}${path}`, { headers: { cookie: user.cookie } })).status

  async function sessionIdsOf (sub: string): Promise<string[]> {
    const response = await admin(`/admin/users/${encodeURIComponent(sub)}/sessions`)
    expect(response.status).toBe(200)
    return ((await response.json()) as { sessions: Array<{ id: string }> }).sessions.map(s => s.id)
  }

  /** Signs `sub` in with fresh browsers until its sessions sit on at least `masters` masters. */
  async function signInAcrossMasters (sub: string, masters: number): Promise<SignedInUser[]> {
    const users: SignedInUser[] = []
    const nodes = new Set<RedisServer>()
    while (nodes.size < masters || users.length < 3) {
      if (users.length >= 40) throw new Error(`40 sessions of ${sub} landed on fewer than ${masters} masters`)
      const before = new Set(await sessionIdsOf(sub))
      users.push(await signIn(stack.publicUrl, sub))
      const created = (await sessionIdsOf(sub)).filter(id => !before.has(id))
      expect(created).toHaveLength(1)
      nodes.add(await cluster.nodeFor(keyFor.session(created[0]!)))
    }
    return users
  }

  it('is ready as soon as it listens', async () => {
    const ready = await fetch(`${stack.gateway.adminUrl}/readyz`)
    expect(await ready.json()).toMatchObject({ checks: { sessionStore: 'ok' } })
  })

  it('signs in through the IdP, proxies GET /api/orders, serves /bff/user and logs out', async () => {
    const user = await signIn(stack.publicUrl)
    const orders = await fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })
    expect(orders.status).toBe(200)
    expect(await orders.json()).toMatchObject({ user: 'alice' })
    expect(stack.api.received.at(-1)?.headers.authorization).toMatch(/^Bearer eyJ/)

    const me = await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ sub: 'alice', roles: ['user'] })

    const logout = await fetch(`${stack.publicUrl}/bff/logout`, {
      method: 'POST', headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken },
    })
    expect(logout.status).toBe(200)
    expect(await status(user, '/bff/user')).toBe(401)
    expect(await status(user, '/api/orders')).toBe(401)
  })

  it('lists and revokes together one user\'s sessions spread over several masters (admin API)', async () => {
    const bob = await signIn(stack.publicUrl, 'bob')
    const devices = await signInAcrossMasters('alice', 2)
    const ids = await sessionIdsOf('alice')
    expect(ids).toHaveLength(devices.length)
    for (const device of devices) expect(await status(device, '/api/orders')).toBe(200)

    const revoke = await admin('/admin/users/alice/sessions', 'DELETE')
    expect(revoke.status).toBe(200)
    expect(await revoke.json()).toEqual({ revoked: ids.length })
    expect(await sessionIdsOf('alice')).toEqual([])
    for (const device of devices) {
      expect(await status(device, '/bff/user')).toBe(401)
      expect(await status(device, '/api/orders')).toBe(401)
    }
    // Someone else's session, wherever it lives, is untouched.
    expect(await status(bob, '/api/orders')).toBe(200)
  })

  it('flushes every session on every master (DELETE /admin/sessions?all=true)', async () => {
    const devices = [...await signInAcrossMasters('alice', 3), await signIn(stack.publicUrl, 'bob')]
    const flush = await admin('/admin/sessions?all=true', 'DELETE')
    expect(flush.status).toBe(200)
    expect(((await flush.json()) as { revoked: number }).revoked).toBeGreaterThanOrEqual(devices.length)
    for (const device of devices) expect(await status(device, '/bff/user')).toBe(401)
  })

  it('answers 503 session_store_unavailable (never 500) while the master holding a session is down, and recovers by itself', async () => {
    // Signed in and seen on the first instance only: the second must read the session from the store.
    const user = await signIn(stack.publicUrl)
    const other = stack.gateways[1]!.url
    const [id] = await sessionIdsOf('alice')
    const holder = await cluster.nodeFor(keyFor.session(id!))

    await holder.stop()
    const during = await fetch(`${other}/api/orders`, { headers: { cookie: user.cookie } })
    expect(during.status).toBe(503)
    expect(await during.json()).toMatchObject({ error: 'session_store_unavailable' })
    // The first instance may still answer from what it has verified, but never with an error of its own.
    expect([200, 503]).toContain(await status(user, '/api/orders'))

    await holder.start()
    await cluster.waitUntilOk()
    const startedAgain = Date.now()
    await until('the session is served again', async () => (await status(user, '/api/orders', other)) === 200 || undefined)
    expect(Date.now() - startedAgain).toBeLessThan(5000)
    expect(await status(user, '/bff/user', other)).toBe(200)
    expect(await status(user, '/bff/user')).toBe(200)
  })
})
