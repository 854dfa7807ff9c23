/**
 * Session cryptography: cookie signatures and encryption of session data at rest.
 *
 * Each `SESSION_SECRET` entry yields two independent keys through HKDF (one
 * signs cookies, one encrypts), identified by a short key id so rotation never
 * depends on list order. Session data is encrypted with AES-256-GCM under a key
 * derived from BOTH the server secret and a per-session key that exists only in
 * the browser's cookie: a Redis dump, even with the server secret, opens nothing.
 *
 * Sealed data is bytes (format 2): `0x02`, the key id (6 bytes), the IV (12),
 * the ciphertext of the plaintext DEFLATE-compressed (raw, RFC 1951) with the
 * preset dictionary of `sealed-dictionary.ts`, the tag (16); the first 7 bytes
 * are authenticated with the caller's associated data.
 * Sessions are mostly JWTs, base64 text that compresses well, and a session is
 * stored for every signed-in user: this keeps one in Redis within 3 KB (see
 * docs/sessions.md). Format 1 (text `v1.<key id>.<base64url of IV,
 * ciphertext, tag>`, uncompressed) still opens and counts as stale, so a
 * session sealed before the upgrade is re-sealed at its next use.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { constants as zlib, deflateRawSync, inflateRawSync } from 'node:zlib'
import { SEALED_DICTIONARY } from './sealed-dictionary.js'

interface DerivedSecret {
  kid: string
  /** Its place in SESSION_SECRET: where its data keys are remembered for a session key. */
  position: number
  signingKey: Buffer
  encryptionKey: Buffer
}

export interface SessionCrypto {
  sign (value: string): string
  /** The value if any configured secret signed it, else undefined. */
  verify (signed: string): string | undefined
  /** The plaintext sealed in the current format, as bytes. */
  seal (plaintext: string, sessionKey: Buffer, associatedData: string): Buffer
  /**
   * Opens what `seal` made (the bytes, or their base64url text) and format 1 (its text, or that
   * text's bytes). Throws when the data was not sealed with this session key and a configured secret.
   */
  unseal (sealed: Uint8Array | string, sessionKey: Buffer, associatedData: string): string
  /** True when `sealed` is in an older format or used a secret other than the current first one (re-seal it). */
  isStale (sealed: Uint8Array | string): boolean
}

const FORMAT_2 = 0x02
const KID_BYTES = 6
const HEADER_BYTES = 1 + KID_BYTES
const IV_BYTES = 12
const TAG_BYTES = 16
const FORMAT_1_PREFIX = 'v1.'
// The first byte of format 1 read as bytes: its text begins with `v`.
const FORMAT_1_FIRST_BYTE = 0x76
// Opened data is authenticated before it is inflated; the cap is a second line, far above any session.
const MAX_PLAINTEXT_BYTES = 1 << 20

const hkdf = (secret: string, info: string, salt: Buffer = Buffer.alloc(0)) =>
  Buffer.from(hkdfSync('sha256', secret, salt, info, 32))

function asBytes (sealed: Uint8Array | string): Buffer {
  if (typeof sealed === 'string') return Buffer.from(sealed, sealed.startsWith(FORMAT_1_PREFIX) ? 'latin1' : 'base64url')
  return Buffer.isBuffer(sealed) ? sealed : Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength)
}

export function createSessionCrypto (secrets: readonly string[]): SessionCrypto {
  if (secrets.length === 0) throw new Error('at least one session secret is required')
  const derived: DerivedSecret[] = secrets.map((secret, position) => ({
    // 8 base64url characters: 6 bytes in format 2's header.
    kid: createHash('sha256').update(`bff-kid:${secret}`).digest('base64url').slice(0, 8),
    position,
    signingKey: hkdf(secret, 'bff/cookie-signing'),
    encryptionKey: hkdf(secret, 'bff/session-encryption'),
  }))
  const current = derived[0] as DerivedSecret
  const currentHeader = Buffer.concat([Buffer.of(FORMAT_2), Buffer.from(current.kid, 'base64url')])
  const byKid = new Map(derived.map(d => [d.kid, d]))

  const mac = (key: Buffer, value: string) => createHmac('sha256', key).update(value).digest('base64url')
  // A session's data key (HKDF of a secret's encryption key and the cookie's session key) is
  // derived once per session key object and secret, not per request: the session manager hands
  // back the very Buffer it decoded for a cookie it verified before (remembered, bounded). Keyed
  // weakly by that Buffer, a derived key is reachable only through the session key it came from
  // and lives exactly as long as something holds that key; nothing here needs evicting.
  const dataKeys = new WeakMap<Buffer, Array<Buffer | undefined>>()
  function dataKey (secret: DerivedSecret, sessionKey: Buffer): Buffer {
    let known = dataKeys.get(sessionKey)
    const remembered = known?.[secret.position]
    if (remembered) return remembered
    const key = Buffer.from(hkdfSync('sha256', secret.encryptionKey, sessionKey, 'bff/session-data', 32))
    if (!known) {
      known = []
      dataKeys.set(sessionKey, known)
    }
    known[secret.position] = key
    return key
  }
  const unopenable = () => new Error('sealed in an unknown format or with an unknown key')

  function unsealFormat1 (text: string, sessionKey: Buffer, associatedData: string): string {
    const [, kid, payload] = text.split('.')
    const secret = kid === undefined ? undefined : byKid.get(kid)
    if (!secret || payload === undefined) throw unopenable()
    const bytes = Buffer.from(payload, 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', dataKey(secret, sessionKey), bytes.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(associatedData))
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
  }

  function unsealFormat2 (bytes: Buffer, sessionKey: Buffer, associatedData: string): string {
    if (bytes.length < HEADER_BYTES + IV_BYTES + TAG_BYTES) throw unopenable()
    const header = bytes.subarray(0, HEADER_BYTES)
    const secret = byKid.get(header.toString('base64url', 1))
    if (!secret) throw unopenable()
    const decipher = createDecipheriv('aes-256-gcm', dataKey(secret, sessionKey), bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES))
    decipher.setAAD(Buffer.concat([header, Buffer.from(associatedData)]))
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    const compressed = decipher.update(bytes.subarray(HEADER_BYTES + IV_BYTES, bytes.length - TAG_BYTES))
    // Checks the tag (GCM adds no bytes here): nothing is inflated that a configured secret did not seal.
    decipher.final()
    return inflateRawSync(compressed, { dictionary: SEALED_DICTIONARY, maxOutputLength: MAX_PLAINTEXT_BYTES }).toString('utf8')
  }

  return {
    sign (value) {
      return `${value}.${mac(current.signingKey, value)}`
    },
    verify (signed) {
      const dot = signed.lastIndexOf('.')
      if (dot <= 0) return undefined
      const value = signed.slice(0, dot)
      const given = Buffer.from(signed.slice(dot + 1))
      for (const secret of derived) {
        const expected = Buffer.from(mac(secret.signingKey, value))
        if (expected.length === given.length && timingSafeEqual(expected, given)) return value
      }
      return undefined
    },
    seal (plaintext, sessionKey, associatedData) {
      const compressed = deflateRawSync(plaintext, { level: zlib.Z_BEST_COMPRESSION, dictionary: SEALED_DICTIONARY })
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', dataKey(current, sessionKey), iv)
      cipher.setAAD(Buffer.concat([currentHeader, Buffer.from(associatedData)]))
      const body = Buffer.concat([cipher.update(compressed), cipher.final()])
      // A sealed value may be kept for the session's life (the memory store holds it as it is): its
      // own allocation, not a slice of Node's shared buffer pool that would keep the whole slab alive.
      const sealed = Buffer.allocUnsafeSlow(HEADER_BYTES + IV_BYTES + body.length + TAG_BYTES)
      currentHeader.copy(sealed, 0)
      iv.copy(sealed, HEADER_BYTES)
      body.copy(sealed, HEADER_BYTES + IV_BYTES)
      cipher.getAuthTag().copy(sealed, HEADER_BYTES + IV_BYTES + body.length)
      return sealed
    },
    unseal (sealed, sessionKey, associatedData) {
      if (typeof sealed === 'string' && sealed.startsWith(FORMAT_1_PREFIX)) return unsealFormat1(sealed, sessionKey, associatedData)
      const bytes = asBytes(sealed)
      if (bytes[0] === FORMAT_2) return unsealFormat2(bytes, sessionKey, associatedData)
      if (bytes[0] === FORMAT_1_FIRST_BYTE) return unsealFormat1(bytes.toString('latin1'), sessionKey, associatedData)
      throw unopenable()
    },
    isStale (sealed) {
      const bytes = asBytes(sealed)
      return bytes[0] !== FORMAT_2 || bytes.toString('base64url', 1, HEADER_BYTES) !== current.kid
    },
  }
}
