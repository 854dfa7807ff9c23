/**
 * Property-based: decodeSessionCookie never throws, and nothing but a cookie
 * this gateway issued (under a configured secret) ever names a session.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { decodeSessionCookie, encodeSessionCookie, handleOf, newSessionCookieValue } from '../../gateway/session/session-cookie.js'

const RUNS = 3000
const crypto = createSessionCrypto(['fuzz-secret-0123456789-abcdefghijklmnop'])
const rotated = createSessionCrypto(['fuzz-secret-NEW-0123456789-abcdefghijkl', 'fuzz-secret-0123456789-abcdefghijklmnop'])
const stranger = createSessionCrypto(['someone-else-0123456789-abcdefghijklmno'])

const issued = Array.from({ length: 8 }, () => {
  const value = newSessionCookieValue()
  return { value, cookie: encodeSessionCookie(value, crypto) }
})

const cookieChars = fc.constantFrom(...'ABCXYZabcxyz0123456789-_.=%+/ ;,"\'\\\u0000\u007fé'.split(''))
const cookieText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 250 }),
  fc.string({ unit: cookieChars, maxLength: 250 }),
  fc.base64String({ maxLength: 120 })
)

/** One edit of a real cookie: a character replaced, inserted or removed, a cut, or something appended. */
const tampered = fc.record({
  original: fc.constantFrom(...issued.map(i => i.cookie)),
  at: fc.nat(),
  kind: fc.constantFrom('replace', 'insert', 'delete', 'cut', 'append', 'prepend'),
  text: fc.string({ unit: cookieChars, minLength: 1, maxLength: 4 }),
}).map(({ original, at, kind, text }) => {
  const i = at % original.length
  switch (kind) {
    case 'replace': return original.slice(0, i) + text + original.slice(i + text.length)
    case 'insert': return original.slice(0, i) + text + original.slice(i)
    case 'delete': return original.slice(0, i) + original.slice(i + 1)
    case 'cut': return original.slice(0, i)
    case 'append': return original + text
    default: return text + original
  }
})

describe('decodeSessionCookie under hostile input (property-based)', () => {
  it('never throws, and random text never names a session', () => {
    fc.assert(fc.property(cookieText, raw => decodeSessionCookie(raw, crypto) === undefined), { numRuns: RUNS })
  })

  it('a cookie with any edit is refused (unless the edit changed nothing)', () => {
    fc.assert(fc.property(tampered, raw => {
      const decoded = decodeSessionCookie(raw, crypto)
      const original = issued.find(i => i.cookie === raw)
      return original ? decoded?.handle === original.value.handle : decoded === undefined
    }), { numRuns: RUNS })
  })

  it('a value signed with our secret but not of the cookie\'s shape is refused; whatever is accepted has the exact shape', () => {
    const shaped = fc.tuple(fc.string({ unit: cookieChars, maxLength: 30 }), fc.string({ unit: cookieChars, maxLength: 50 }))
      .map(([id, key]) => `${id}.${key}`)
    fc.assert(fc.property(fc.oneof(shaped, cookieText), value => {
      const decoded = decodeSessionCookie(crypto.sign(value), crypto)
      if (decoded === undefined) return true
      return /^[A-Za-z0-9_-]{24}$/.test(decoded.id) && decoded.key.length === 32 && decoded.handle === handleOf(decoded.id) &&
        value === `${decoded.id}.${decoded.key.toString('base64url')}`
    }), { numRuns: RUNS })
  })

  it('real cookies decode to their session under the current and a rotated secret list, never under another secret', () => {
    for (const { value, cookie } of issued) {
      expect(decodeSessionCookie(cookie, crypto)).toEqual(value)
      expect(decodeSessionCookie(cookie, rotated)).toEqual(value)
      expect(decodeSessionCookie(cookie, stranger)).toBeUndefined()
      expect(decodeSessionCookie(encodeSessionCookie(value, stranger), crypto)).toBeUndefined()
    }
  })
})
