/**
 * The session store's contract, run against every implementation: the
 * in-memory demo store and Redis (a private redis-server on a free port), and
 * the Redis store again on a three-master Redis Cluster, where a user's
 * sessions live in different slots on different masters.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createRedisStore } from '../../gateway/session/redis-store.js'
import { createRedisConnection, waitForRedis } from '../../gateway/session/redis-client.js'
import type { SessionMeta, SessionStore, StoredSession } from '../../gateway/session/store.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js'

const HOUR = 3_600_000
// The store keeps sealed data as the bytes it was given.
const bytes = (text: string) => Buffer.from(text)

function meta (sub: string, overrides: Partial<SessionMeta> = {}): SessionMeta {
  const now = Date.now()
  return { sub, createdAt: now, absoluteExpiresAt: now + HOUR, ip: '127.0.0.1', userAgent: 'test', ...overrides }
}

function session (handle: string, sub = 'alice', overrides: Partial<SessionMeta> = {}): Omit<StoredSession, 'version'> {
  return { handle, meta: meta(sub, overrides), sealed: bytes(`sealed-${handle}`), lastSeenAt: Date.now() }
}

const until = async (check: () => Promise<boolean>, timeoutMs = 2000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

interface Subject {
  name: string
  setup (): Promise<SessionStore>
  teardown (): Promise<void>
}

let redisServer: RedisServer | undefined
let redisStore: SessionStore | undefined
let memoryStore: SessionStore | undefined
let redisCluster: RedisCluster | undefined
let clusterStore: SessionStore | undefined

const subjects: Subject[] = [
  {
    name: 'memory store',
    async setup () {
      memoryStore = createMemoryStore()
      return memoryStore
    },
    async teardown () { await memoryStore?.close() },
  },
  {
    name: 'redis store',
    async setup () {
      redisServer = await startRedisServer()
      const connection = createRedisConnection({ mode: 'standalone', url: redisServer.url })
      await waitForRedis(connection, 5000)
      redisStore = createRedisStore(connection)
      return redisStore
    },
    async teardown () {
      await redisStore?.close()
      await redisServer?.close()
    },
  },
  {
    name: 'redis store on a cluster',
    async setup () {
      redisCluster = await startRedisCluster()
      const nodes = redisCluster.nodes.map(node => ({ host: '127.0.0.1', port: node.port }))
      const connection = createRedisConnection({ mode: 'cluster', nodes, tls: false })
      await waitForRedis(connection, 5000)
      clusterStore = createRedisStore(connection)
      return clusterStore
    },
    async teardown () {
      await clusterStore?.close()
      await redisCluster?.close()
    },
  },
]

describe.each(subjects)('session store contract: $name', (subject) => {
  let store: SessionStore
  beforeAll(async () => { store = await subject.setup() })
  afterAll(async () => { await subject.teardown() })
  beforeEach(async () => { await store.destroyAll() })

  describe('sessions', () => {
    it('creates a session at version 1 and reads it back', async () => {
      await store.create(session('h1'), HOUR)
      const read = await store.get('h1')
      expect(read).toMatchObject({ handle: 'h1', version: 1, sealed: bytes('sealed-h1'), meta: { sub: 'alice' } })
    })

    it('keeps the sealed data byte for byte, whatever the bytes', async () => {
      const everyByte = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256))
      await store.create({ ...session('h1'), sealed: everyByte }, HOUR)
      expect((await store.get('h1'))!.sealed.equals(everyByte)).toBe(true)
      const next = Buffer.from(everyByte).reverse()
      expect(await store.replace('h1', 1, { meta: meta('alice'), sealed: next }, HOUR)).toBe(true)
      expect((await store.get('h1'))!.sealed.equals(next)).toBe(true)
    })

    it('answers undefined for an unknown handle', async () => {
      expect(await store.get('nope')).toBeUndefined()
    })

    it('replaces only when the expected version matches (compare-and-set)', async () => {
      await store.create(session('h1'), HOUR)
      const current = await store.get('h1')
      expect(await store.replace('h1', 1, { meta: current!.meta, sealed: bytes('v2') }, HOUR)).toBe(true)
      // A stale writer that read version 1 must not overwrite version 2.
      expect(await store.replace('h1', 1, { meta: current!.meta, sealed: bytes('stale') }, HOUR)).toBe(false)
      const read = await store.get('h1')
      expect(read).toMatchObject({ version: 2, sealed: bytes('v2') })
    })

    it('never resurrects a destroyed session through replace', async () => {
      await store.create(session('h1'), HOUR)
      await store.destroy('h1')
      expect(await store.replace('h1', 1, { meta: meta('alice'), sealed: bytes('x') }, HOUR)).toBe(false)
      expect(await store.get('h1')).toBeUndefined()
    })

    it('touch records activity without changing version or data, and not for missing sessions', async () => {
      await store.create(session('h1'), HOUR)
      expect(await store.touch('h1', 12345, HOUR)).toBe(true)
      expect(await store.get('h1')).toMatchObject({ version: 1, sealed: bytes('sealed-h1'), lastSeenAt: 12345 })
      expect(await store.touch('ghost', 1, HOUR)).toBe(false)
      expect(await store.get('ghost')).toBeUndefined()
    })

    it('expires a session after its TTL', async () => {
      await store.create(session('short'), 150)
      expect(await store.get('short')).toBeDefined()
      await until(async () => (await store.get('short')) === undefined)
    })

    it('destroy reports whether there was a session', async () => {
      await store.create(session('h1'), HOUR)
      expect(await store.destroy('h1')).toBe(true)
      expect(await store.destroy('h1')).toBe(false)
    })
  })

  describe('per-user index', () => {
    it('lists every live session of a user and no one else\'s', async () => {
      await store.create(session('a1', 'alice'), HOUR)
      await store.create(session('a2', 'alice'), HOUR)
      await store.create(session('b1', 'bob'), HOUR)
      const handles = (await store.listByUser('alice')).map(s => s.handle).sort()
      expect(handles).toEqual(['a1', 'a2'])
    })

    it('drops sessions that ended from the listing (destroyed or expired)', async () => {
      await store.create(session('a1', 'alice'), HOUR)
      await store.create(session('a2', 'alice'), 100)
      await store.create(session('a3', 'alice'), HOUR)
      await store.destroy('a3')
      await until(async () => (await store.get('a2')) === undefined)
      expect((await store.listByUser('alice')).map(s => s.handle)).toEqual(['a1'])
    })

    it('revokes all of one user\'s sessions and reports which, leaving tombstones', async () => {
      await store.create(session('a1', 'alice'), HOUR)
      await store.create(session('a2', 'alice'), HOUR)
      await store.create(session('b1', 'bob'), HOUR)
      expect((await store.revokeByUser('alice', 'operator')).sort()).toEqual(['a1', 'a2'])
      expect(await store.get('a1')).toMatchObject({ revoked: 'operator' })
      expect((await store.get('b1'))?.revoked).toBeUndefined()
      expect(await store.listByUser('alice')).toEqual([])
      expect(await store.revokeByUser('alice', 'operator')).toEqual([])
    })

    it('handles subs containing hash-tag braces without mixing users', async () => {
      await store.create(session('x1', 'we{ird}'), HOUR)
      await store.create(session('x2', 'we'), HOUR)
      expect((await store.listByUser('we{ird}')).map(s => s.handle)).toEqual(['x1'])
    })

    it('revokes every session at once (flush)', async () => {
      await store.create(session('a1', 'alice'), HOUR)
      await store.create(session('b1', 'bob', { sid: 'idp-1' }), HOUR)
      expect(await store.revokeAll('operator')).toBe(2)
      expect(await store.get('a1')).toMatchObject({ revoked: 'operator' })
      expect(await store.listByUser('bob')).toEqual([])
      expect(await store.listBySid('idp-1')).toEqual([])
      expect(await store.revokeAll('operator')).toBe(0)
    })

    it('deletes every record, tombstones included (destroyAll)', async () => {
      await store.create(session('a1', 'alice'), HOUR)
      await store.revoke('a1', 'operator')
      await store.create(session('b1', 'bob'), HOUR)
      expect(await store.destroyAll()).toBe(2)
      expect(await store.get('a1')).toBeUndefined()
      expect(await store.get('b1')).toBeUndefined()
    })
  })

  describe('revocation', () => {
    it('turns a live session into a tombstone once; the tombstone cannot be replaced or touched', async () => {
      await store.create(session('h1', 'alice', { sid: 'idp-9' }), HOUR)
      expect(await store.revoke('h1', 'backchannel')).toBe(true)
      expect(await store.revoke('h1', 'operator')).toBe(false)
      expect(await store.revoke('ghost', 'operator')).toBe(false)
      const tombstone = await store.get('h1')
      expect(tombstone).toMatchObject({ revoked: 'backchannel', sealed: bytes('sealed-h1') })
      expect(await store.replace('h1', 1, { meta: tombstone!.meta, sealed: bytes('back-from-the-dead') }, HOUR)).toBe(false)
      expect(await store.touch('h1', 999, HOUR)).toBe(false)
      expect(await store.get('h1')).toMatchObject({ sealed: bytes('sealed-h1'), revoked: 'backchannel' })
      expect(await store.listByUser('alice')).toEqual([])
      expect(await store.listBySid('idp-9')).toEqual([])
    })

    it('finds live sessions by the IdP\'s session id', async () => {
      await store.create(session('s1', 'alice', { sid: 'idp-1' }), HOUR)
      await store.create(session('s2', 'alice', { sid: 'idp-1' }), HOUR)
      await store.create(session('s3', 'alice', { sid: 'idp-2' }), HOUR)
      expect((await store.listBySid('idp-1')).sort()).toEqual(['s1', 's2'])
      await store.destroy('s2')
      expect(await store.listBySid('idp-1')).toEqual(['s1'])
      expect(await store.listBySid('unknown')).toEqual([])
    })

    it('keeps a per-user epoch that only goes up', async () => {
      expect(await store.userEpoch('carol')).toBe(0)
      expect(await store.bumpUserEpoch('carol', HOUR)).toBe(1)
      expect(await store.bumpUserEpoch('carol', HOUR)).toBe(2)
      expect(await store.userEpoch('carol')).toBe(2)
      expect(await store.userEpoch('dave')).toBe(0)
    })

    it('answers a new session with its user\'s epoch as it stands once the session is indexed', async () => {
      expect(await store.create(session('e1', 'erin'), HOUR)).toBe(0)
      await store.bumpUserEpoch('erin', HOUR)
      await store.bumpUserEpoch('erin', HOUR)
      expect(await store.create(session('e2', 'erin'), HOUR)).toBe(2)
      expect(await store.create(session('e3', 'frank'), HOUR)).toBe(0)
      expect((await store.listByUser('erin')).map(s => s.handle).sort()).toEqual(['e1', 'e2'])
    })
  })

  describe('session marks', () => {
    it('counts refresh requests on a live session, read back with it, without changing its version or data', async () => {
      await store.create(session('m1'), HOUR)
      expect((await store.get('m1'))?.refreshRequests ?? 0).toBe(0)
      expect(await store.requestRefresh('m1')).toBe(true)
      expect(await store.requestRefresh('m1')).toBe(true)
      expect(await store.get('m1')).toMatchObject({ version: 1, sealed: bytes('sealed-m1'), refreshRequests: 2 })
    })

    it('keeps the marks when the tokens are replaced, so a refresh that started before a request cannot clear it', async () => {
      await store.create(session('m2'), HOUR)
      expect(await store.requestRefresh('m2')).toBe(true)
      expect(await store.forgetAcr('m2')).toBe(true)
      const current = await store.get('m2')
      expect(await store.replace('m2', 1, { meta: current!.meta, sealed: bytes('v2') }, HOUR)).toBe(true)
      expect(await store.get('m2')).toMatchObject({ version: 2, sealed: bytes('v2'), refreshRequests: 1, acrForgotten: true })
    })

    it('makes a live session forget its acr, for good', async () => {
      await store.create(session('m3'), HOUR)
      expect((await store.get('m3'))?.acrForgotten ?? false).toBe(false)
      expect(await store.forgetAcr('m3')).toBe(true)
      expect(await store.forgetAcr('m3')).toBe(true)
      expect((await store.get('m3'))?.acrForgotten).toBe(true)
    })

    it('marks nothing that is not a live session: no record created, no tombstone marked', async () => {
      expect(await store.requestRefresh('ghost')).toBe(false)
      expect(await store.forgetAcr('ghost')).toBe(false)
      expect(await store.get('ghost')).toBeUndefined()
      await store.create(session('m4'), HOUR)
      await store.revoke('m4', 'operator')
      expect(await store.requestRefresh('m4')).toBe(false)
      expect(await store.forgetAcr('m4')).toBe(false)
      expect(await store.get('m4')).toMatchObject({ revoked: 'operator' })
      expect((await store.get('m4'))?.refreshRequests ?? 0).toBe(0)
    })

    it('a new session under a handle starts without the marks of one before it', async () => {
      await store.create(session('m5'), HOUR)
      await store.requestRefresh('m5')
      await store.forgetAcr('m5')
      await store.destroy('m5')
      await store.create(session('m5'), HOUR)
      const fresh = await store.get('m5')
      expect(fresh?.refreshRequests ?? 0).toBe(0)
      expect(fresh?.acrForgotten ?? false).toBe(false)
    })
  })

  describe('account status', () => {
    it('is active until disabled, and active again once enabled', async () => {
      expect(await store.isDisabled('erin')).toBe(false)
      await store.setDisabled('erin', true)
      await store.setDisabled('erin', true)
      expect(await store.isDisabled('erin')).toBe(true)
      expect(await store.isDisabled('frank')).toBe(false)
      await store.setDisabled('erin', false)
      expect(await store.isDisabled('erin')).toBe(false)
      await store.setDisabled('erin', false)
      expect(await store.isDisabled('erin')).toBe(false)
    })

    it('keeps subs with hash-tag braces apart', async () => {
      await store.setDisabled('gr{ace}', true)
      expect(await store.isDisabled('gr{ace}')).toBe(true)
      expect(await store.isDisabled('gr')).toBe(false)
      await store.setDisabled('gr{ace}', false)
    })

    it('outlives the end of every session (a flush does not enable anyone)', async () => {
      await store.setDisabled('heidi', true)
      await store.create(session('h9', 'heidi'), HOUR)
      await store.revokeAll('operator')
      await store.destroyAll()
      expect(await store.isDisabled('heidi')).toBe(true)
      await store.setDisabled('heidi', false)
    })
  })

  describe('login state', () => {
    it('is readable exactly once', async () => {
      await store.saveLoginState('s1', 'payload', 60_000)
      expect(await store.takeLoginState('s1')).toBe('payload')
      expect(await store.takeLoginState('s1')).toBeUndefined()
    })

    it('expires', async () => {
      await store.saveLoginState('s2', 'payload', 100)
      await until(async () => (await store.takeLoginState('s2')) === undefined)
    })
  })

  describe('native handoffs', () => {
    it('are read once', async () => {
      await store.saveHandoff('h1', 'payload', 60_000)
      expect(await store.takeHandoff('h1')).toBe('payload')
      expect(await store.takeHandoff('h1')).toBeUndefined()
    })

    it('expire', async () => {
      await store.saveHandoff('h2', 'payload', 100)
      await until(async () => (await store.takeHandoff('h2')) === undefined)
    })

    it('are kept apart from login states of the same name', async () => {
      await store.saveLoginState('same', 'login', 60_000)
      await store.saveHandoff('same', 'handoff', 60_000)
      expect(await store.takeHandoff('same')).toBe('handoff')
      expect(await store.takeLoginState('same')).toBe('login')
    })
  })

  describe('claimOnce', () => {
    it('is true only the first time within the TTL', async () => {
      expect(await store.claimOnce('jti-1', 60_000)).toBe(true)
      expect(await store.claimOnce('jti-1', 60_000)).toBe(false)
      expect(await store.claimOnce('jti-2', 60_000)).toBe(true)
    })
  })

  describe('locks', () => {
    it('lets one owner at a time hold a lock; only the owner renews or releases it', async () => {
      expect(await store.acquireLock('l1', 'owner-a', 5000)).toBe(true)
      expect(await store.acquireLock('l1', 'owner-b', 5000)).toBe(false)
      expect(await store.renewLock('l1', 'owner-b', 5000)).toBe(false)
      expect(await store.renewLock('l1', 'owner-a', 5000)).toBe(true)
      await store.releaseLock('l1', 'owner-b')
      expect(await store.acquireLock('l1', 'owner-b', 5000)).toBe(false)
      await store.releaseLock('l1', 'owner-a')
      expect(await store.acquireLock('l1', 'owner-b', 5000)).toBe(true)
    })

    it('frees a lock whose lease lapsed', async () => {
      expect(await store.acquireLock('l2', 'owner-a', 100)).toBe(true)
      await until(() => store.acquireLock('l2', 'owner-b', 5000))
    })
  })
})

describe('redis store when Redis is down', () => {
  it('fails with session_store_unavailable at once and recovers by itself', async () => {
    const server = await startRedisServer()
    const connection = createRedisConnection({ mode: 'standalone', url: server.url })
    await waitForRedis(connection, 5000)
    const store = createRedisStore(connection)
    try {
      await store.create(session('h1'), HOUR)
      await server.stop()
      await expect(store.get('h1')).rejects.toMatchObject({ code: 'BFF_SESSION_STORE_UNAVAILABLE' })
      await server.start()
      await until(async () => {
        try {
          await store.ping()
          return true
        } catch {
          return false
        }
      }, 5000)
      // Without persistence the data is gone, but the store works again.
      expect(await store.get('h1')).toBeUndefined()
    } finally {
      await store.close()
      await server.close()
    }
  })

  it('keeps keys in the documented layout (hash-tagged per session and per user)', async () => {
    const server = await startRedisServer()
    const connection = createRedisConnection({ mode: 'standalone', url: server.url })
    await waitForRedis(connection, 5000)
    const store = createRedisStore(connection)
    const probe = new Redis(server.url)
    try {
      await store.create(session('h1', 'alice'), HOUR)
      expect((await probe.keys('*')).sort()).toEqual(['bff:{s:h1}', 'bff:{u:alice}:sessions'])
      // A user's account status lives in the user's slot; marks are fields of the session's own hash.
      await store.setDisabled('alice', true)
      await store.requestRefresh('h1')
      await store.forgetAcr('h1')
      expect((await probe.keys('*')).sort()).toEqual(['bff:{s:h1}', 'bff:{u:alice}:disabled', 'bff:{u:alice}:sessions'])
      expect(await probe.hmget('bff:{s:h1}', 'rr', 'na')).toEqual(['1', '1'])
      // Marking kept the session's TTL.
      expect(await probe.pttl('bff:{s:h1}')).toBeGreaterThan(HOUR - 60_000)
    } finally {
      probe.disconnect()
      await store.close()
      await server.close()
    }
  })
})
