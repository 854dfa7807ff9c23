/**
 * The session cookie's value: `<id>.<key>` signed, where `id` (144 random bits)
 * names the session and `key` (256 random bits) is the per-session encryption
 * key. The store only ever sees `handle = SHA-256(id)`, so neither a Redis dump
 * nor an operator's handle can be turned back into a working cookie.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { SessionCrypto } from './session-crypto.js'

const ID_BYTES = 18
const KEY_BYTES = 32
const ID_CHARS = 24
const KEY_CHARS = 43
const BASE64URL = /^[A-Za-z0-9_-]+$/

export interface SessionCookieValue {
  id: string
  key: Buffer
  handle: string
}

export function handleOf (id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 32)
}

export function newSessionCookieValue (): SessionCookieValue {
  const id = randomBytes(ID_BYTES).toString('base64url')
  return { id, key: randomBytes(KEY_BYTES), handle: handleOf(id) }
}

export function encodeSessionCookie (value: SessionCookieValue, crypto: SessionCrypto): string {
  return crypto.sign(`${value.id}.${value.key.toString('base64url')}`)
}

/** Parses and verifies a cookie value; anything forged, truncated or malformed is undefined. */
export function decodeSessionCookie (raw: string | undefined, crypto: SessionCrypto): SessionCookieValue | undefined {
  if (!raw || raw.length > 200) return undefined
  const value = crypto.verify(raw)
  if (!value) return undefined
  const [id, key, extra] = value.split('.')
  if (extra !== undefined || !id || !key) return undefined
  if (id.length !== ID_CHARS || key.length !== KEY_CHARS || !BASE64URL.test(id) || !BASE64URL.test(key)) return undefined
  return { id, key: keyBytes(key), handle: handleOf(id) }
}

/**
 * The key in a buffer of its own. `Buffer.from(string)` takes small buffers from Node's shared
 * pool (a 64 KB slab on Node 26): a key kept as long as its session is remembered (verified
 * cookies, the session cache) would keep its whole slab alive, tens of KB per remembered session.
 */
function keyBytes (encoded: string): Buffer {
  const bytes = Buffer.alloc(KEY_BYTES)
  bytes.write(encoded, 'base64url')
  return bytes
}
