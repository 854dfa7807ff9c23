/**
 * The Redis session store (standalone, Sentinel or Cluster).
 *
 * Layout: a session is one hash (`v`, `meta`, `sealed` bytes, `seen`; `revoked` on a
 * tombstone; `rr` and `na` for its marks) whose TTL is the session's remaining
 * life; a user's sessions are a sorted set scored by absolute expiry, pruned
 * whenever it is read, so it stays consistent with sessions that simply
 * expired. Multi-step updates that must be atomic are Lua scripts over one
 * key, so they are Cluster-safe.
 */
import { Cluster } from 'ioredis'
import { SessionStoreUnavailable } from '../errors.js'
import { INVALIDATION_CHANNEL, keyFor } from './keys.js'
import type { RedisConnection } from './redis-client.js'
import { invalidationMessage } from './invalidation.js'
import type { RevocationReason, SessionMeta, SessionStore, StoredSession } from './store.js'

const REPLACE_IF_VERSION = `
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'meta', ARGV[3], 'sealed', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`

const TOUCH_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`

// Marks a live session revoked (keeping its TTL) and returns its meta, or false.
const REVOKE_IF_LIVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return false end
redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
return redis.call('HGET', KEYS[1], 'meta')`

// Counts a mark on a live session (a hash field beside its data), keeping its TTL and version.
const MARK_IF_LIVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1`

const INCR_WITH_TTL = `
local value = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return value`

const SET_ADD_WITH_TTL = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`

// Adds a session to its user's index (KEYS[1]) and answers the user's epoch (KEYS[2], the same
// `{u:<sub>}` slot) as it stands right after: see the session manager's `create`.
const INDEX_ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return tonumber(redis.call('GET', KEYS[2]) or '0')`

const IF_OWNER_PEXPIRE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`

const IF_OWNER_DEL = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`

interface ScriptCommands {
  bffReplaceIfVersion (key: string, expected: string, next: string, meta: string, sealed: Buffer, ttlMs: number): Promise<number>
  bffTouchIfExists (key: string, seen: number, ttlMs: number): Promise<number>
  bffIndexAdd (indexKey: string, epochKey: string, now: number, score: number, member: string): Promise<number>
  bffIfOwnerPexpire (key: string, owner: string, ttlMs: number): Promise<number>
  bffIfOwnerDel (key: string, owner: string): Promise<number>
  bffRevokeIfLive (key: string, reason: string): Promise<string | null>
  bffIncrWithTtl (key: string, ttlMs: number): Promise<number>
  bffMarkIfLive (key: string, field: string): Promise<number>
  bffSetAddWithTtl (key: string, member: string, ttlMs: number): Promise<number>
}

/** The store's Lua scripts (exported so the start-up check's command list can be held against them). */
export const STORE_SCRIPTS: Readonly<Record<keyof ScriptCommands, string>> = {
  bffReplaceIfVersion: REPLACE_IF_VERSION,
  bffTouchIfExists: TOUCH_IF_EXISTS,
  bffIndexAdd: INDEX_ADD,
  bffIfOwnerPexpire: IF_OWNER_PEXPIRE,
  bffIfOwnerDel: IF_OWNER_DEL,
  bffRevokeIfLive: REVOKE_IF_LIVE,
  bffIncrWithTtl: INCR_WITH_TTL,
  bffMarkIfLive: MARK_IF_LIVE,
  bffSetAddWithTtl: SET_ADD_WITH_TTL,
}

/** The scripts that take more than one key (all of them in one slot). */
const SCRIPT_KEYS: Partial<Record<keyof ScriptCommands, number>> = { bffIndexAdd: 2 }

function defineScripts (redis: RedisConnection): RedisConnection & ScriptCommands {
  for (const [name, lua] of Object.entries(STORE_SCRIPTS)) {
    redis.defineCommand(name, { numberOfKeys: SCRIPT_KEYS[name as keyof ScriptCommands] ?? 1, lua })
  }
  return redis as RedisConnection & ScriptCommands
}

/** The hash fields that hold a session's marks (see `SessionMarks`). */
const MARK_FIELD = { refresh: 'rr', forgetAcr: 'na' } as const

// Read as bytes: `sealed` is binary (the other fields are ASCII or JSON text).
function parseSession (handle: string, fields: Record<string, Buffer>): StoredSession | undefined {
  if (!fields.v || !fields.meta || !fields.sealed) return undefined
  const refreshRequests = fields[MARK_FIELD.refresh]
  return {
    handle,
    version: Number(fields.v.toString()),
    meta: JSON.parse(fields.meta.toString()) as SessionMeta,
    sealed: fields.sealed,
    lastSeenAt: Number(fields.seen?.toString() ?? 0),
    ...(fields.revoked ? { revoked: fields.revoked.toString() as RevocationReason } : {}),
    ...(refreshRequests ? { refreshRequests: Number(refreshRequests.toString()) } : {}),
    ...(fields[MARK_FIELD.forgetAcr] ? { acrForgotten: true } : {}),
  }
}

export interface RedisStoreOptions {
  /** Called for every failed store operation (metrics); the caller gets SessionStoreUnavailable. */
  onError?: (error: unknown) => void
  /**
   * Called with each invalidation message before it is published: this instance evicts at once,
   * without waiting for its own message to come back through Redis (which, in a Cluster, first
   * crosses between nodes).
   */
  onAnnounce?: (message: string) => void
}

export function createRedisStore (connection: RedisConnection, options: RedisStoreOptions = {}): SessionStore {
  // Translate every ioredis failure (refused, timed out, READONLY mid-failover…) into our
  // one fail-closed error, keeping the original as the cause for the logs.
  async function guarded<T> (operation: () => Promise<T>): Promise<T> {
    try {
      return await operation()
    } catch (error) {
      options.onError?.(error)
      throw new SessionStoreUnavailable({ cause: error })
    }
  }

  const redis = defineScripts(connection)

  const masters = (): Array<RedisConnection> =>
    redis instanceof Cluster ? redis.nodes('master') : [redis]

  async function scanKeys (pattern: string): Promise<string[]> {
    const found: string[] = []
    for (const node of masters()) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        found.push(...keys)
      } while (cursor !== '0')
    }
    return found
  }

  async function readSession (handle: string): Promise<StoredSession | undefined> {
    return parseSession(handle, await redis.hgetallBuffer(keyFor.session(handle)))
  }

  async function unindex (handle: string, meta: SessionMeta): Promise<void> {
    await redis.zrem(keyFor.userSessions(meta.sub), handle)
    if (meta.sid !== undefined) await redis.srem(keyFor.sidSessions(meta.sid), handle)
  }

  // Every write that changes a session's tokens or validity is announced, so instances that
  // cache sessions evict them; a failed announcement fails the operation (the caller retries).
  async function announce (message: string): Promise<void> {
    options.onAnnounce?.(message)
    await redis.publish(INVALIDATION_CHANNEL, message)
  }

  async function revoke (handle: string, reason: RevocationReason): Promise<boolean> {
    const meta = await redis.bffRevokeIfLive(keyFor.session(handle), reason)
    if (!meta) return false
    await announce(invalidationMessage.session(handle))
    await unindex(handle, JSON.parse(meta) as SessionMeta)
    return true
  }

  // Login states and native handoffs: kept for their TTL, readable once (GETDEL: one reader wins).
  const saveOnce = (key: string, value: string, ttlMs: number) => guarded(async () => {
    await redis.set(key, value, 'PX', ttlMs)
  })
  const takeOnce = (key: string) => guarded(async () => (await redis.getdel(key)) ?? undefined)

  async function mark (handle: string, field: string): Promise<boolean> {
    if (await redis.bffMarkIfLive(keyFor.session(handle), field) !== 1) return false
    await announce(invalidationMessage.session(handle))
    return true
  }

  return {
    kind: 'redis',
    create: (session, ttlMs) => guarded(async () => {
      const key = keyFor.session(session.handle)
      await redis.multi()
        .del(key)
        .hset(key, { v: '1', meta: JSON.stringify(session.meta), sealed: session.sealed, seen: String(session.lastSeenAt) })
        .pexpire(key, ttlMs)
        .exec()
      const { sub, sid } = session.meta
      // The record must exist before the user's index names it (a revoker reading the index then
      // finds it); the IdP-session index has no such tie, so it goes out with the user's, in one
      // round trip.
      const [epoch] = await Promise.all([
        redis.bffIndexAdd(keyFor.userSessions(sub), keyFor.userEpoch(sub), Date.now(), session.meta.absoluteExpiresAt, session.handle),
        sid === undefined ? undefined : redis.bffSetAddWithTtl(keyFor.sidSessions(sid), session.handle, session.meta.absoluteExpiresAt - Date.now()),
      ])
      return epoch
    }),
    get: (handle) => guarded(() => readSession(handle)),
    replace: (handle, expectedVersion, next, ttlMs) => guarded(async () => {
      const written = await redis.bffReplaceIfVersion(
        keyFor.session(handle), String(expectedVersion), String(expectedVersion + 1),
        JSON.stringify(next.meta), next.sealed, ttlMs)
      if (written === 1) await announce(invalidationMessage.session(handle))
      return written === 1
    }),
    touch: (handle, lastSeenAt, ttlMs) => guarded(async () => {
      return (await redis.bffTouchIfExists(keyFor.session(handle), lastSeenAt, ttlMs)) === 1
    }),
    destroy: (handle) => guarded(async () => {
      const meta = await redis.hget(keyFor.session(handle), 'meta')
      const deleted = await redis.del(keyFor.session(handle))
      if (deleted === 1) await announce(invalidationMessage.session(handle))
      if (meta) await unindex(handle, JSON.parse(meta) as SessionMeta)
      return deleted === 1
    }),
    revoke: (handle, reason) => guarded(() => revoke(handle, reason)),
    listByUser: (sub) => guarded(async () => {
      const index = keyFor.userSessions(sub)
      await redis.zremrangebyscore(index, '-inf', Date.now())
      const handles = await redis.zrange(index, 0, -1)
      const sessions = await Promise.all(handles.map(readSession))
      const gone = handles.filter((_, i) => sessions[i] === undefined || sessions[i]?.revoked)
      if (gone.length > 0) await redis.zrem(index, ...gone)
      return sessions.filter((s): s is StoredSession => s !== undefined && !s.revoked)
    }),
    listBySid: (sid) => guarded(async () => {
      const handles = await redis.smembers(keyFor.sidSessions(sid))
      const sessions = await Promise.all(handles.map(readSession))
      return handles.filter((_, i) => sessions[i] !== undefined && !sessions[i]?.revoked)
    }),
    requestRefresh: (handle) => guarded(() => mark(handle, MARK_FIELD.refresh)),
    forgetAcr: (handle) => guarded(() => mark(handle, MARK_FIELD.forgetAcr)),
    isDisabled: (sub) => guarded(async () => (await redis.exists(keyFor.accountDisabled(sub))) === 1),
    setDisabled: (sub, disabled) => guarded(async () => {
      if (disabled) await redis.set(keyFor.accountDisabled(sub), '1')
      else await redis.del(keyFor.accountDisabled(sub))
    }),
    revokeByUser: (sub, reason) => guarded(async () => {
      const index = keyFor.userSessions(sub)
      const handles = await redis.zrange(index, 0, -1)
      const revoked = await Promise.all(handles.map(h => revoke(h, reason)))
      // Only the handles read: a session indexed since (a login finishing now) must stay in the
      // index, where the next "log out everywhere" finds it (deleting the key would lose it).
      if (handles.length > 0) await redis.zrem(index, ...handles)
      await announce(invalidationMessage.user(sub))
      return handles.filter((_, i) => revoked[i])
    }),
    revokeAll: (reason) => guarded(async () => {
      let count = 0
      for (const key of await scanKeys(keyFor.allSessions())) {
        if (await redis.bffRevokeIfLive(key, reason)) count += 1
      }
      for (const key of [...await scanKeys(keyFor.allUserIndexes()), ...await scanKeys(keyFor.allSidIndexes())]) await redis.del(key)
      await announce(invalidationMessage.all())
      return count
    }),
    destroyAll: () => guarded(async () => {
      let count = 0
      for (const key of await scanKeys(keyFor.allSessions())) count += await redis.del(key)
      for (const key of [...await scanKeys(keyFor.allUserIndexes()), ...await scanKeys(keyFor.allSidIndexes())]) await redis.del(key)
      await announce(invalidationMessage.all())
      return count
    }),
    userEpoch: (sub) => guarded(async () => Number(await redis.get(keyFor.userEpoch(sub)) ?? 0)),
    bumpUserEpoch: (sub, ttlMs) => guarded(async () => {
      const epoch = await redis.bffIncrWithTtl(keyFor.userEpoch(sub), ttlMs)
      await announce(invalidationMessage.user(sub))
      return epoch
    }),
    saveLoginState: (state, value, ttlMs) => saveOnce(keyFor.loginState(state), value, ttlMs),
    takeLoginState: (state) => takeOnce(keyFor.loginState(state)),
    saveHandoff: (id, value, ttlMs) => saveOnce(keyFor.handoff(id), value, ttlMs),
    takeHandoff: (id) => takeOnce(keyFor.handoff(id)),
    claimOnce: (key, ttlMs) => guarded(async () => {
      return (await redis.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK'
    }),
    acquireLock: (key, owner, ttlMs) => guarded(async () => {
      return (await redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK'
    }),
    renewLock: (key, owner, ttlMs) => guarded(async () => {
      return (await redis.bffIfOwnerPexpire(key, owner, ttlMs)) === 1
    }),
    releaseLock: (key, owner) => guarded(async () => {
      await redis.bffIfOwnerDel(key, owner)
    }),
    countSessions: () => guarded(async () => (await scanKeys(keyFor.allSessions())).length),
    ping: () => guarded(async () => {
      await redis.ping()
    }),
    close: async () => {
      await connection.quit().catch(() => connection.disconnect())
    },
  }
}
