/**
 * Every Redis key the gateway uses comes from `keyFor`: what must share a Redis
 * Cluster slot does (multi-key scripts and transactions need it), whatever the
 * identity provider puts in a `sub` or `sid`; and the scan pattern for sessions
 * finds the session records and nothing stored beside them. The slot is Redis
 * Cluster's own function (cluster-key-slot, the one ioredis routes with); the
 * pattern is tried on a real redis-server.
 */
import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { INVALIDATION_CHANNEL, keyFor, RATE_LIMIT_NAMESPACE } from '../../gateway/session/keys.js'

// A CommonJS module whose whole export is the function (its types say `export =`).
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string | Buffer) => number
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'

/** Handles as the gateway makes them (base64url), and as an admin URL could name them (anything). */
const HANDLES = ['hG3kZ0-_aQ9vL2mN4pR6sT8uW1xY3zA5', 'x}', '{y}', 'a}{b', '%7D', '']
/** Subs and sids chosen by an identity provider, some hostile. */
const IDP_VALUES = ['alice', '248289761001', 'a}b', '{victim}', '}{', '{}', '%7B', 'user@example.com', 'ünïcode']

/** What Redis Cluster hashes: the text between the first `{` and the first `}` after it, when not empty. */
function hashTag (key: string): string | undefined {
  const open = key.indexOf('{')
  const close = key.indexOf('}', open + 1)
  return open !== -1 && close > open + 1 ? key.slice(open + 1, close) : undefined
}

describe('keys: what shares a Redis Cluster slot', () => {
  it.each(HANDLES)('a session (%j), its refresh lock and its tokens-revoked marker hash to one slot', (handle) => {
    const slot = calculateSlot(keyFor.session(handle))
    expect(calculateSlot(keyFor.refreshLock(handle))).toBe(slot)
    expect(calculateSlot(keyFor.tokensRevoked(handle))).toBe(slot)
  })

  it.each(IDP_VALUES)('a user\'s session index and epoch hash to one slot (sub %j)', (sub) => {
    expect(calculateSlot(keyFor.userEpoch(sub))).toBe(calculateSlot(keyFor.userSessions(sub)))
  })
})

describe('keys: braces in a sub, sid or handle cannot choose the slot', () => {
  it.each(IDP_VALUES)('the hash tag of a user\'s keys is the whole escaped sub, braces never cut it short (sub %j)', (sub) => {
    for (const key of [keyFor.userSessions(sub), keyFor.userEpoch(sub)]) {
      const tag = hashTag(key)
      expect(tag).toMatch(/^u:[^{}]*$/)
      expect(decodeURIComponent(tag!.slice(2))).toBe(sub)
    }
  })

  it.each(IDP_VALUES)('the hash tag of an IdP session\'s index is the whole escaped sid (sid %j)', (sid) => {
    const tag = hashTag(keyFor.sidSessions(sid))
    expect(tag).toMatch(/^sid:[^{}]*$/)
    expect(decodeURIComponent(tag!.slice(4))).toBe(sid)
  })

  it.each(HANDLES)('the hash tag of a session\'s keys is the whole escaped handle (%j)', (handle) => {
    for (const key of [keyFor.session(handle), keyFor.refreshLock(handle), keyFor.tokensRevoked(handle)]) {
      expect(decodeURIComponent(hashTag(key)!.slice(2))).toBe(handle)
    }
  })

  it('a sub that closes the hash tag early does not hash as the user it starts with', () => {
    // Interpolated raw, `victim}` would give `bff:{u:victim}}:sessions`, whose tag is the victim's.
    expect(hashTag(keyFor.userSessions('victim}'))).not.toBe(hashTag(keyFor.userSessions('victim')))
    expect(hashTag(keyFor.sidSessions('victim}'))).not.toBe(hashTag(keyFor.sidSessions('victim')))
  })

  it('distinct values never share a key, escapes included ("{" and its escape "%7B")', () => {
    const keys = IDP_VALUES.map(keyFor.userSessions)
    expect(new Set(keys).size).toBe(keys.length)
    expect(keyFor.session('{')).not.toBe(keyFor.session('%7B'))
  })
})

describe('keys: the scan pattern for every session', () => {
  let server: RedisServer
  let redis: Redis
  beforeAll(async () => {
    server = await startRedisServer()
    redis = new Redis(server.url, { maxRetriesPerRequest: 0 })
  })
  afterAll(async () => {
    redis?.disconnect()
    await server?.close()
  })
  beforeEach(async () => { await redis.flushall() })

  it('matches the session records, and neither the keys beside them nor any other key', async () => {
    const sessionKeys = HANDLES.map(keyFor.session)
    const others = [
      ...HANDLES.flatMap(handle => [keyFor.refreshLock(handle), keyFor.tokensRevoked(handle)]),
      ...IDP_VALUES.flatMap(value => [keyFor.userSessions(value), keyFor.userEpoch(value), keyFor.sidSessions(value)]),
      keyFor.loginState('state-1'),
      keyFor.logoutTokenId('http://idp.example', 'jti-1'),
      `${RATE_LIMIT_NAMESPACE}/bff/login:127.0.0.1`,
      INVALIDATION_CHANNEL,
    ]
    for (const key of [...sessionKeys, ...others]) await redis.set(key, '1')

    expect((await redis.keys(keyFor.allSessions())).sort()).toEqual([...sessionKeys].sort())
    // SCAN (what the store uses, node by node) applies the same glob.
    const [, scanned] = await redis.scan('0', 'MATCH', keyFor.allSessions(), 'COUNT', 10_000)
    expect(scanned.sort()).toEqual([...sessionKeys].sort())
  })

  it('the user and IdP-session index patterns match those indexes only', async () => {
    const userIndexes = IDP_VALUES.map(keyFor.userSessions)
    const sidIndexes = IDP_VALUES.map(keyFor.sidSessions)
    const others = [...HANDLES.map(keyFor.session), ...IDP_VALUES.map(keyFor.userEpoch), ...HANDLES.map(keyFor.refreshLock)]
    for (const key of [...userIndexes, ...sidIndexes, ...others]) await redis.set(key, '1')

    expect((await redis.keys(keyFor.allUserIndexes())).sort()).toEqual([...userIndexes].sort())
    expect((await redis.keys(keyFor.allSidIndexes())).sort()).toEqual([...sidIndexes].sort())
  })
})
