/**
 * The gateway on a real Redis Sentinel deployment (REDIS_SENTINELS,
 * REDIS_SENTINEL_NAME): a master, two replicas and three sentinels. The whole
 * product signs in through the real IdP; then the master is replaced, once by
 * promotion (SENTINEL FAILOVER) and once by a crash. Throughout, users get 200
 * or 503 `session_store_unavailable`, never a 500 or a Redis error; the gateway
 * finds the new master by itself within seconds; sessions replicated before
 * the failover survive it; and sessions written after it land on the new
 * master, not on the old one that Sentinel has not yet demoted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedisSentinelSet, type RedisSentinelSet } from '../helpers/redis-sentinel.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { keyFor } from '../../gateway/session/keys.js'

/** After the sentinels name the new master, users are served again within this. */
const RECOVERY_MS = 5000

interface Observation { at: number, path: string, status: number, body: string }

let set: RedisSentinelSet
let stack: Stack

beforeAll(async () => {
  set = await startRedisSentinelSet({ replicas: 2, sentinels: 3 })
  stack = await startStack({ redisEnv: { REDIS_SENTINELS: set.sentinelList, REDIS_SENTINEL_NAME: set.name } })
})
afterAll(async () => {
  await stack?.close()
  await set?.close()
})

const get = (user: SignedInUser, path: string) => fetch(`${stack.publicUrl}${path}`, { headers: { cookie: user.cookie } })

/** Browses as `user` without pause until stopped, recording every answer. */
function keepBrowsing (user: SignedInUser, paths = ['/api/orders', '/bff/user']) {
  const observations: Observation[] = []
  const stopped = new AbortController()
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      await Promise.all(paths.map(async path => {
        try {
          const response = await get(user, path)
          observations.push({ at: Date.now(), path, status: response.status, body: await response.text() })
        } catch (error) {
          observations.push({ at: Date.now(), path, status: 0, body: String(error) })
        }
      }))
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  })()
  return {
    observations,
    async stop () {
      stopped.abort()
      await loop
      return observations
    },
  }
}

/** Resolves with the time it took until every path answers `user` with 200 again. */
async function timeUntilServed (user: SignedInUser, paths = ['/api/orders', '/bff/user']): Promise<number> {
  const start = Date.now()
  for (;;) {
    const statuses = await Promise.all(paths.map(async path => (await get(user, path).catch(() => undefined))?.status))
    if (statuses.every(status => status === 200)) return Date.now() - start
    if (Date.now() - start > RECOVERY_MS * 2) throw new Error(`not served again within ${RECOVERY_MS * 2} ms: ${statuses.join(', ')}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

function expectOnly200Or503 (observations: Observation[]) {
  expect(observations.length).toBeGreaterThan(0)
  for (const observation of observations) {
    expect([200, 503], `${observation.path} → ${observation.status} ${observation.body}`).toContain(observation.status)
    if (observation.status === 503) expect(JSON.parse(observation.body)).toMatchObject({ error: 'session_store_unavailable' })
    expect(observation.body).not.toMatch(/READONLY|LOADING|MASTERDOWN/)
  }
}

async function sessionIdsOf (sub: string): Promise<string[]> {
  const response = await fetch(`${stack.gateway.adminUrl}/admin/users/${sub}/sessions`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
  expect(response.status).toBe(200)
  return ((await response.json()) as { sessions: Array<{ id: string }> }).sessions.map(s => s.id)
}

/** Signs `sub` in and waits until every replica has the new session (WAIT), so a failover cannot lose it. */
async function signInReplicated (sub: string, master: RedisServer, replicas: number): Promise<SignedInUser> {
  const user = await signIn(stack.publicUrl, sub)
  expect(await set.client(master).call('WAIT', String(replicas), '1000')).toBe(replicas)
  return user
}

async function holds (server: RedisServer, handle: string): Promise<boolean> {
  return (await set.client(server).exists(keyFor.session(handle))) === 1
}

describe('the gateway on Redis Sentinel', () => {
  it('signs in through the IdP, proxies GET /api/orders, serves /bff/user and logs out', async () => {
    const user = await signIn(stack.publicUrl)
    const orders = await get(user, '/api/orders')
    expect(orders.status).toBe(200)
    expect(await orders.json()).toMatchObject({ user: 'alice' })
    const me = await get(user, '/bff/user')
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ sub: 'alice', roles: ['user'] })
    // The session lives on the master the sentinels name.
    const [id] = await sessionIdsOf('alice')
    expect(await holds(await set.currentMaster(), id!)).toBe(true)

    const logout = await fetch(`${stack.publicUrl}/bff/logout`, {
      method: 'POST', headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken },
    })
    expect(logout.status).toBe(200)
    expect((await get(user, '/bff/user')).status).toBe(401)
    expect(await sessionIdsOf('alice')).toEqual([])
  })

  it('follows a promoted replica (SENTINEL FAILOVER): no error but 503 reaches users, replicated sessions survive, new ones land on the new master', async () => {
    const oldMaster = await set.currentMaster()
    await set.waitForReplicas(oldMaster, 2)
    const alice = await signInReplicated('alice', oldMaster, 2)

    const browsing = keepBrowsing(alice)
    const newMaster = await set.failover()
    const recoveredIn = await timeUntilServed(alice)
    expectOnly200Or503(await browsing.stop())
    expect(recoveredIn).toBeLessThan(RECOVERY_MS)

    // Replicated before the failover: still there, no new login needed.
    expect(await (await get(alice, '/bff/user')).json()).toMatchObject({ sub: 'alice' })

    // The old master still takes writes until Sentinel demotes it (seconds later); a gateway
    // that stayed connected to it would write this session where the resync then erases it.
    const bob = await signIn(stack.publicUrl, 'bob')
    const [bobsSession] = await sessionIdsOf('bob')
    expect(await holds(newMaster, bobsSession!)).toBe(true)
    expect(await holds(oldMaster, bobsSession!)).toBe(false)
    expect((await get(bob, '/api/orders')).status).toBe(200)
  })

  it('survives a master crash with the first sentinel down too: 503 while there is no master, then the promoted replica serves the same sessions', async () => {
    const master = await set.currentMaster()
    await set.waitForReplicas(master, 1)
    const alice = await signInReplicated('alice', master, 1)
    const sessions = await sessionIdsOf('alice')

    // The gateway lists this sentinel first; it must ask the others.
    await set.sentinels[0]!.stop()
    const browsing = keepBrowsing(alice)
    await master.kill()
    const newMaster = await set.waitForNewMaster(master, 20_000)
    const recoveredIn = await timeUntilServed(alice)
    const observations = await browsing.stop()
    expectOnly200Or503(observations)
    expect(observations.some(o => o.status === 503)).toBe(true)
    expect(recoveredIn).toBeLessThan(RECOVERY_MS)

    for (const id of sessions) expect(await holds(newMaster, id)).toBe(true)
    expect(await sessionIdsOf('alice')).toEqual(expect.arrayContaining(sessions))
    expect(await (await get(alice, '/bff/user')).json()).toMatchObject({ sub: 'alice' })
  })
})
