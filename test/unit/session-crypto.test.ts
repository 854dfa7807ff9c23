import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { decodeSessionCookie, encodeSessionCookie, handleOf, newSessionCookieValue } from '../../gateway/session/session-cookie.js'

const SECRET_A = 'a'.repeat(32) + '-first-secret'
const SECRET_B = 'b'.repeat(32) + '-second-secret'

describe('session cookie value', () => {
  const crypto = createSessionCrypto([SECRET_A])

  it('carries at least 128 bits of id entropy and a 256-bit key, opaque and signed', () => {
    const value = newSessionCookieValue()
    expect(Buffer.from(value.id, 'base64url').length).toBeGreaterThanOrEqual(16)
    expect(value.key.length).toBe(32)
    const encoded = encodeSessionCookie(value, crypto)
    expect(encoded).toMatch(/^[A-Za-z0-9_.-]+$/)
    const decoded = decodeSessionCookie(encoded, crypto)
    expect(decoded?.id).toBe(value.id)
    expect(decoded?.key.equals(value.key)).toBe(true)
    expect(decoded?.handle).toBe(handleOf(value.id))
  })

  it('derives a public handle that differs from the id and cannot be used as a cookie', () => {
    const value = newSessionCookieValue()
    expect(value.handle).not.toContain(value.id)
    expect(decodeSessionCookie(value.handle, crypto)).toBeUndefined()
    expect(decodeSessionCookie(crypto.sign(value.handle), crypto)).toBeUndefined()
  })

  it.each([
    ['empty', ''],
    ['unsigned', 'abc.def'],
    ['garbage', 'not a cookie'],
    ['very long', 'x'.repeat(5000)],
  ])('refuses a %s cookie', (_name, raw) => {
    expect(decodeSessionCookie(raw, crypto)).toBeUndefined()
  })

  it('decodes the key into memory of its own, never a slice of Node\'s shared buffer pool (a remembered cookie would keep the whole slab alive)', () => {
    const decoded = decodeSessionCookie(encodeSessionCookie(newSessionCookieValue(), crypto), crypto)!
    expect(decoded.key.byteLength).toBe(32)
    expect(decoded.key.buffer.byteLength).toBe(32)
  })

  it('refuses a cookie whose signature was tampered with', () => {
    const encoded = encodeSessionCookie(newSessionCookieValue(), crypto)
    const last = encoded.at(-1) === 'A' ? 'B' : 'A'
    expect(decodeSessionCookie(encoded.slice(0, -1) + last, crypto)).toBeUndefined()
  })

  it('refuses a cookie signed with a secret that is no longer configured', () => {
    const encoded = encodeSessionCookie(newSessionCookieValue(), createSessionCrypto([SECRET_B]))
    expect(decodeSessionCookie(encoded, crypto)).toBeUndefined()
  })
})

describe('encryption at rest', () => {
  it('round-trips with the session key and refuses any other key or handle', () => {
    const crypto = createSessionCrypto([SECRET_A])
    const key = randomBytes(32)
    const sealed = crypto.seal('{"accessToken":"secret-token"}', key, 'handle-1')
    expect(sealed).not.toContain('secret-token')
    expect(crypto.unseal(sealed, key, 'handle-1')).toBe('{"accessToken":"secret-token"}')
    expect(() => crypto.unseal(sealed, randomBytes(32), 'handle-1')).toThrow()
    expect(() => crypto.unseal(sealed, key, 'handle-2')).toThrow()
  })

  it('needs the server secret too: the cookie key alone opens nothing', () => {
    const key = randomBytes(32)
    const sealed = createSessionCrypto([SECRET_A]).seal('data', key, 'h')
    expect(() => createSessionCrypto([SECRET_B]).unseal(sealed, key, 'h')).toThrow()
  })

  it('rotates keys: data and cookies from the old first secret still open after a new one is prepended', () => {
    const before = createSessionCrypto([SECRET_A])
    const after = createSessionCrypto([SECRET_B, SECRET_A])
    const key = randomBytes(32)
    const sealed = before.seal('data', key, 'h')
    expect(after.unseal(sealed, key, 'h')).toBe('data')
    expect(after.isStale(sealed)).toBe(true)
    expect(after.isStale(after.seal('data', key, 'h'))).toBe(false)
    const cookie = encodeSessionCookie(newSessionCookieValue(), before)
    expect(decodeSessionCookie(cookie, after)).toBeDefined()
  })
})
