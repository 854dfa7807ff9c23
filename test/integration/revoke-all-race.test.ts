/**
 * "Log this user out everywhere" against a login finishing at the same time,
 * on the memory store and on a real redis-server. A request no longer reads
 * the user's epoch, so the race is settled where it happens: the revocation
 * bumps the epoch before it reads the user's index, and a new session reads
 * the epoch again once it is indexed (sessions.ts `create`). Each interleaving
 * of their store calls is driven in turn, the one running whole at a step of
 * the other; whatever the order, no session made before the bump survives it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createRedisStore } from '../../gateway/session/redis-store.js'
import { createRedisConnection, waitForRedis, type RedisConnection } from '../../gateway/session/redis-client.js'
import { createRevocation, type Revocation } from '../../gateway/session/revocation.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createSessionManager, type SessionManager } from '../../gateway/session/sessions.js'
import type { RevocationReason, SessionStore } from '../../gateway/session/store.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'

const DAY = 86_400_000
const SECRET = 'race-test-session-secret-0123456789-abcdefgh'
const ALICE = { sub: 'alice', sid: 'idp-1', ip: '127.0.0.1', userAgent: 'test' }
const TOKENS = { accessToken: 'access', refreshToken: 'refresh', accessTokenExpiresAt: Date.now() + DAY, claims: {}, roles: ['user'] }

/** Where one side runs whole, relative to the other side's store calls. */
type Step =
  | 'creation: before it reads the epoch' | 'creation: after it read the epoch' | 'creation: once stored and indexed'
  | 'revocation: before the epoch bump' | 'revocation: between the bump and the index' | 'revocation: after the index'

/** How the new login's session ends up. */
type Outcome = { live: true, epoch: number } | { live: false, tombstone: RevocationReason }

const interleavings: Array<[Step, Outcome]> = [
  // The revocation runs whole at a step of the login:
  ['creation: before it reads the epoch', { live: true, epoch: 1 }], // a login after the revocation
  ['creation: after it read the epoch', { live: false, tombstone: 'epoch' }], // the login sees the bump once indexed
  ['creation: once stored and indexed', { live: false, tombstone: 'operator' }], // the revocation finds it in the index
  // The login runs whole at a step of the revocation:
  ['revocation: before the epoch bump', { live: false, tombstone: 'operator' }],
  ['revocation: between the bump and the index', { live: false, tombstone: 'operator' }], // made after the bump, yet in the index read
  ['revocation: after the index', { live: true, epoch: 1 }], // a login after the revocation
]

interface Side { sessions: SessionManager, revocation: Revocation }

/** A session manager and a revocation service over `store`, calling `at(step)` at each step. */
function sides (store: SessionStore, at: (step: Step) => Promise<void>): Side {
  const stepped: SessionStore = {
    ...store,
    async userEpoch (sub) {
      await at('creation: before it reads the epoch')
      const epoch = await store.userEpoch(sub)
      await at('creation: after it read the epoch')
      return epoch
    },
    async create (session, ttlMs) {
      const epoch = await store.create(session, ttlMs)
      await at('creation: once stored and indexed')
      return epoch
    },
  }
  const sessions = createSessionManager({ store: stepped, crypto: createSessionCrypto([SECRET]), idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 43_200 })
  const revocation = createRevocation({
    records: store,
    index: {
      ...store,
      async bumpUserEpoch (sub, ttlMs) {
        await at('revocation: before the epoch bump')
        const epoch = await store.bumpUserEpoch(sub, ttlMs)
        await at('revocation: between the bump and the index')
        return epoch
      },
      async revokeByUser (sub, reason) {
        const revoked = await store.revokeByUser(sub, reason)
        await at('revocation: after the index')
        return revoked
      },
    },
    revokeOwn: (session, reason) => sessions.revoke(session, reason),
    forgetCookie: (raw, replacedBy) => sessions.forget(raw, replacedBy),
    revokeRefreshToken: async () => {},
    audit: () => {},
    epochTtlMs: DAY,
  })
  return { sessions, revocation }
}

interface Subject {
  name: string
  open (): Promise<SessionStore>
}

let redisServer: RedisServer | undefined
const opened: SessionStore[] = []
beforeAll(async () => { redisServer = await startRedisServer() })
afterAll(async () => {
  for (const store of opened) await store.close()
  await redisServer?.close()
})

async function redisConnection (): Promise<RedisConnection> {
  const connection = createRedisConnection({ mode: 'standalone', url: redisServer!.url })
  await waitForRedis(connection, 5000)
  return connection
}

const subjects: Subject[] = [
  { name: 'memory store', open: async () => createMemoryStore() },
  {
    name: 'redis store',
    async open () {
      const store = createRedisStore(await redisConnection())
      opened.push(store)
      await store.destroyAll()
      return store
    },
  },
]

describe.each(subjects)('"log out everywhere" racing a login ($name)', (subject) => {
  it.each(interleavings)('%s: the new session ends up %j', async (step, expected) => {
    const store = await subject.open()
    // The user's epoch starts at 0 for every case.
    const sub = `alice-${Math.random().toString(36).slice(2)}`
    let other: () => Promise<void> = async () => {}
    const { sessions, revocation } = sides(store, async (reached) => {
      if (reached !== step) return
      const run = other
      other = async () => {}
      await run()
    })
    const earlier = await sessions.create({ ...ALICE, sub }, TOKENS)
    let login: Awaited<ReturnType<SessionManager['create']>> | undefined
    const logIn = async () => { login = await sessions.create({ ...ALICE, sub }, TOKENS) }
    const revokeAll = async () => { await revocation.revoke({ sub, reason: 'operator' }) }
    if (step.startsWith('creation')) {
      other = revokeAll
      await logIn()
    } else {
      other = logIn
      await revokeAll()
    }

    const fresh = createSessionManager({ store, crypto: createSessionCrypto([SECRET]), idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 43_200 })
    expect(await fresh.load(earlier.cookieValue)).toBeUndefined()
    const loaded = await fresh.load(login!.cookieValue)
    const outcome: Outcome = loaded
      ? { live: true, epoch: loaded.meta.epoch ?? 0 }
      : { live: false, tombstone: (await store.get(login!.session.handle))!.revoked! }
    expect(outcome).toEqual(expected)
    expect(await store.userEpoch(sub)).toBe(1)
  })
})

describe('the Redis store\'s revokeByUser', () => {
  it('keeps in the user\'s index a session indexed after it read the index, for the next "log out everywhere"', async () => {
    const other = createRedisStore(await redisConnection())
    opened.push(other)
    const sub = 'index-keeper'
    // The revoking store's connection runs a login (on another connection) right after its index read answers.
    const connection = await redisConnection()
    const racing = new Proxy(connection, {
      get (target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver)
        if (property !== 'zrange' || typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          const handles = await (value as (...a: unknown[]) => Promise<string[]>).apply(target, args)
          const now = Date.now()
          await other.create({ handle: 'indexed-meanwhile', meta: { sub, createdAt: now, absoluteExpiresAt: now + DAY, ip: '127.0.0.1', userAgent: 'test' }, sealed: Buffer.from('sealed'), lastSeenAt: now }, DAY)
          return handles
        }
      },
    })
    const store = createRedisStore(racing)
    opened.push(store)
    const now = Date.now()
    await store.create({ handle: 'before', meta: { sub, createdAt: now, absoluteExpiresAt: now + DAY, ip: '127.0.0.1', userAgent: 'test' }, sealed: Buffer.from('sealed'), lastSeenAt: now }, DAY)

    expect(await store.revokeByUser(sub, 'operator')).toEqual(['before'])
    expect((await other.listByUser(sub)).map(s => s.handle)).toEqual(['indexed-meanwhile'])
    expect(await other.revokeByUser(sub, 'operator')).toEqual(['indexed-meanwhile'])
  })
})
