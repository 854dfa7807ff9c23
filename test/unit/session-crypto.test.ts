import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { constants as zlibConstants, deflateRawSync } from 'node:zlib'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { SEALED_DICTIONARY } from '../../gateway/session/sealed-dictionary.js'
import { decodeSessionCookie, encodeSessionCookie, handleOf, newSessionCookieValue } from '../../gateway/session/session-cookie.js'
import { sealFormat1 } from '../helpers/format-1-seal.js'

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
    expect(sealed.includes('secret-token')).toBe(false)
    // Compressed is not encrypted: neither may the compressed plaintext stand in the sealed bytes.
    const compressed = deflateRawSync('{"accessToken":"secret-token"}', { level: zlibConstants.Z_BEST_COMPRESSION, dictionary: SEALED_DICTIONARY })
    expect(sealed.includes(compressed)).toBe(false)
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

// Written by the gateway before format 2, with FORMAT_1.secret, the session key of 32 bytes of 7
// and the associated data 'fixture-handle'.
const FORMAT_1 = {
  secret: 'fixture-session-secret-0123456789-abcdefgh',
  key: Buffer.alloc(32, 7),
  handle: 'fixture-handle',
  plaintext: '{"accessToken":"access-v1","refreshToken":"refresh-v1","idToken":"id-token-v1","accessTokenExpiresAt":1924992000000,"csrfToken":"csrf-v1","claims":{"name":"Alice"},"roles":["user"]}',
  sealed: 'v1.zvU4Tbcl.mnaS5xvrVtFzQQuY8h7H7Up6-IuoCxsB2kW0m8pLqf00u_2k644vmlEIdQCbqfAK0QIBrS6IoE-FZeWOwTTKbVSN4-0hO0x3lSu1MycC3iCqxMQvT3OKJHJlZavdvTGSbzoEPP1YpTI5iwL-mJ4e6_iPeztgVGwjvYf2Qnc2FkJuhRhAYtV0-6E5Lhefzu_Ls1lMZR1vIC59VbJujZKsnjcuGp6oDTO95OyxY6tjHc8oITY6GQZ6CXmC24pCfW-JYes4IoF_f-8Tw5wwej56ajo',
}

// Written by this version (format 2), with the same secret, key and associated data as FORMAT_1.
const FORMAT_2 = {
  plaintext: '{"accessToken":"eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Im1vY2sifQ.eyJzdWIiOiJhbGljZSJ9.c2ln","refreshToken":"refresh-v2","accessTokenExpiresAt":1924992000000,"claims":{"sub":"alice","name":"Alice"},"roles":["user"],"csrfToken":"csrf-v2"}',
  sealed: 'As71OE23JTGmxvA1y2m4kZpbhgilmfsqiug25feF7mQ3y1CLEc06wwZiRV0uV0vZLI8PgO4DQ4sjgjoP6faISZdcYtut5j0Nt7T1nAn5OaHYch3TaV_01H2yNBGPsr1ggg7Nxd-m5Zwly2KXB_tAEne_',
}

describe('sealed format', () => {
  const crypto = createSessionCrypto([SECRET_A])
  // Three JWT-sized tokens of base64 text, like a session's own and narrowed access tokens.
  const jwtLike = () => `eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.${randomBytes(300).toString('base64url')}.${randomBytes(256).toString('base64url')}`
  const session = JSON.stringify({ accessToken: jwtLike(), apiTokens: { a: { token: jwtLike() }, b: { token: jwtLike() } }, claims: { name: 'Alice Example', email: 'alice@example.com' } })

  it('is bytes: format 2, the key id, then IV, ciphertext and tag, compressed well below the base64 text it replaces', () => {
    const key = randomBytes(32)
    const sealed = crypto.seal(session, key, 'h')
    expect(Buffer.isBuffer(sealed)).toBe(true)
    expect(sealed[0]).toBe(2)
    // Version byte, 6-byte key id, 12-byte IV, 16-byte tag: 35 bytes beside the compressed text.
    expect(sealed.length - 35).toBeLessThan(session.length * 0.8)
    expect(crypto.unseal(sealed, key, 'h')).toBe(session)
    expect(crypto.isStale(sealed)).toBe(false)
  })

  it('opens its base64url text as well as its bytes (the native handoff keeps it in JSON)', () => {
    const key = randomBytes(32)
    const sealed = crypto.seal(session, key, 'h')
    expect(crypto.unseal(sealed.toString('base64url'), key, 'h')).toBe(session)
  })

  it('authenticates its header: a changed version byte or key id opens nothing', () => {
    const key = randomBytes(32)
    const sealed = crypto.seal('data', key, 'h')
    for (const at of [0, 1, 6]) {
      const changed = Buffer.from(sealed)
      changed[at] = changed[at]! ^ 0x01
      expect(() => crypto.unseal(changed, key, 'h'), `byte ${at}`).toThrow()
    }
  })

  it('refuses tampered, truncated and empty data', () => {
    const key = randomBytes(32)
    const sealed = crypto.seal(session, key, 'h')
    const flipped = Buffer.from(sealed)
    flipped[40] = flipped[40]! ^ 0x80
    expect(() => crypto.unseal(flipped, key, 'h')).toThrow()
    expect(() => crypto.unseal(sealed.subarray(0, sealed.length - 1), key, 'h')).toThrow()
    expect(() => crypto.unseal(sealed.subarray(0, 20), key, 'h')).toThrow()
    expect(() => crypto.unseal(Buffer.alloc(0), key, 'h')).toThrow()
    expect(() => crypto.unseal('', key, 'h')).toThrow()
  })

  it('opens nothing that would inflate past 1 MiB, though a configured secret sealed it', () => {
    const key = randomBytes(32)
    const sealed = crypto.seal('x'.repeat(2 ** 20 + 1), key, 'h')
    expect(sealed.length).toBeLessThan(4096)
    expect(() => crypto.unseal(sealed, key, 'h')).toThrow()
  })

  it('opens format 1, as a gateway before format 2 wrote it, as text or as its bytes, and calls it stale', () => {
    const current = createSessionCrypto([FORMAT_1.secret])
    expect(current.unseal(FORMAT_1.sealed, FORMAT_1.key, FORMAT_1.handle)).toBe(FORMAT_1.plaintext)
    expect(current.unseal(Buffer.from(FORMAT_1.sealed), FORMAT_1.key, FORMAT_1.handle)).toBe(FORMAT_1.plaintext)
    expect(current.isStale(FORMAT_1.sealed)).toBe(true)
    expect(current.isStale(Buffer.from(FORMAT_1.sealed))).toBe(true)
    expect(current.isStale(current.seal(FORMAT_1.plaintext, FORMAT_1.key, FORMAT_1.handle))).toBe(false)
    expect(() => current.unseal(FORMAT_1.sealed, randomBytes(32), FORMAT_1.handle)).toThrow()
    expect(() => current.unseal(FORMAT_1.sealed, FORMAT_1.key, 'other-handle')).toThrow()
  })

  it('opens format 2 as this version wrote it: its layout and its compression dictionary never change', () => {
    const current = createSessionCrypto([FORMAT_1.secret])
    const sealed = Buffer.from(FORMAT_2.sealed, 'base64url')
    expect(current.unseal(sealed, FORMAT_1.key, FORMAT_1.handle)).toBe(FORMAT_2.plaintext)
    expect(current.isStale(sealed)).toBe(false)
  })

  it('keeps format 2\'s dictionary byte for byte: data sealed with it opens only with it', () => {
    expect(createHash('sha256').update(SEALED_DICTIONARY).digest('base64url')).toBe('SHYuLhG5BE75VZSfuRvrIu8Hwye5uXB19ifnh_A832E')
  })

  it('the tests\' format 1 sealer writes exactly what such a gateway wrote', () => {
    const iv = Buffer.from(FORMAT_1.sealed.split('.')[2]!, 'base64url').subarray(0, 12)
    expect(sealFormat1(FORMAT_1.secret, FORMAT_1.plaintext, FORMAT_1.key, FORMAT_1.handle, iv)).toBe(FORMAT_1.sealed)
  })
})
