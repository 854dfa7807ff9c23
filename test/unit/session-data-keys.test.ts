/**
 * A session's data key (HKDF of the server secret's encryption key and the
 * cookie's session key) is derived once per verified cookie, not per request:
 * a request that misses the session cache (or has none, SESSION_CACHE_SIZE=0)
 * does one AES-GCM decryption and no key derivation. HKDF is counted by
 * wrapping node:crypto's `hkdfSync`; everything else is the real thing.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { randomBytes } from 'node:crypto'
import * as nodeCrypto from 'node:crypto'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionManager, MAX_VERIFIED_COOKIES, type SessionManager } from '../../gateway/session/sessions.js'
import type { SessionStore } from '../../gateway/session/store.js'

vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>()
  return { ...original, hkdfSync: vi.fn(original.hkdfSync) }
})

const SECRET = 'unit-test-session-secret-0123456789-abcdefgh'
const OLD_SECRET = 'unit-test-session-secret-retired-0123456789'
const ALICE = { sub: 'alice', sid: 'idp-session-1', ip: '127.0.0.1', userAgent: 'unit' }
const TOKENS = { accessToken: 'access-1', refreshToken: 'refresh-1', accessTokenExpiresAt: Date.UTC(2031, 0, 1), claims: {}, roles: ['user'] }

const derivations = () => vi.mocked(nodeCrypto.hkdfSync).mock.calls.length

/** A gateway instance without a session cache (SESSION_CACHE_SIZE=0): every load reads the store. */
const instance = (store: SessionStore, secrets = [SECRET]): SessionManager =>
  createSessionManager({ store, crypto: createSessionCrypto(secrets), idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 43_200 })

afterEach(() => { vi.mocked(nodeCrypto.hkdfSync).mockClear() })

describe('session crypto: data keys', () => {
  it('derives a session key\'s data key once per secret, and opens what either secret sealed', () => {
    const before = createSessionCrypto([OLD_SECRET])
    const after = createSessionCrypto([SECRET, OLD_SECRET])
    const sessionKey = randomBytes(32)
    const sealedBefore = before.seal('{"v":"old"}', sessionKey, 'handle')
    const start = derivations()
    for (let i = 0; i < 5; i++) expect(after.unseal(sealedBefore, sessionKey, 'handle')).toBe('{"v":"old"}')
    const sealedAfter = after.seal('{"v":"new"}', sessionKey, 'handle')
    for (let i = 0; i < 5; i++) expect(after.unseal(sealedAfter, sessionKey, 'handle')).toBe('{"v":"new"}')
    expect(derivations() - start).toBe(2)
    // The key's bytes in another Buffer open the same data (the memo is per Buffer, not a shortcut around the key).
    expect(after.unseal(sealedAfter, Buffer.from(sessionKey), 'handle')).toBe('{"v":"new"}')
    expect(() => after.unseal(sealedAfter, randomBytes(32), 'handle')).toThrow()
  })
})

describe('session manager without a session cache: no key derivation per request', () => {
  it('the instance that made the session never derives its key again', async () => {
    const sessions = instance(createMemoryStore())
    const { cookieValue } = await sessions.create(ALICE, TOKENS)
    const start = derivations()
    for (let i = 0; i < 20; i++) expect((await sessions.load(cookieValue))?.secrets.accessToken).toBe('access-1')
    expect(derivations() - start).toBe(0)
  })

  it('another instance derives it at its first request only', async () => {
    const store = createMemoryStore()
    const { cookieValue } = await instance(store).create(ALICE, TOKENS)
    const other = instance(store)
    const start = derivations()
    for (let i = 0; i < 20; i++) expect(await other.load(cookieValue)).toBeDefined()
    expect(derivations() - start).toBe(1)
  })

  it(`remembers at most ${MAX_VERIFIED_COOKIES} cookies: the oldest is verified (and its key derived) again`, async () => {
    const store = createMemoryStore()
    const sessions = instance(store)
    const first = await sessions.create(ALICE, TOKENS)
    for (let i = 0; i < MAX_VERIFIED_COOKIES; i++) await sessions.create(ALICE, TOKENS)
    const start = derivations()
    expect(await sessions.load(first.cookieValue)).toBeDefined()
    expect(await sessions.load(first.cookieValue)).toBeDefined()
    expect(derivations() - start).toBe(1)
  })
})
