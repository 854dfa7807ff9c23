/**
 * Session cryptography: cookie signatures and encryption of session data at rest.
 *
 * Each `SESSION_SECRET` entry yields two independent keys through HKDF (one
 * signs cookies, one encrypts), identified by a short key id so rotation never
 * depends on list order. Session data is encrypted with AES-256-GCM under a key
 * derived from BOTH the server secret and a per-session key that exists only in
 * the browser's cookie: a Redis dump, even with the server secret, opens nothing.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

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
  seal (plaintext: string, sessionKey: Buffer, associatedData: string): string
  /** Throws when the data was not sealed with this session key and a configured secret. */
  unseal (sealed: string, sessionKey: Buffer, associatedData: string): string
  /** True when `sealed` used a secret other than the current first one (re-seal it). */
  isStale (sealed: string): boolean
}

const SEAL_VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16

const hkdf = (secret: string, info: string, salt: Buffer = Buffer.alloc(0)) =>
  Buffer.from(hkdfSync('sha256', secret, salt, info, 32))

export function createSessionCrypto (secrets: readonly string[]): SessionCrypto {
  if (secrets.length === 0) throw new Error('at least one session secret is required')
  const derived: DerivedSecret[] = secrets.map((secret, position) => ({
    kid: createHash('sha256').update(`bff-kid:${secret}`).digest('base64url').slice(0, 8),
    position,
    signingKey: hkdf(secret, 'bff/cookie-signing'),
    encryptionKey: hkdf(secret, 'bff/session-encryption'),
  }))
  const current = derived[0] as DerivedSecret
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
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', dataKey(current, sessionKey), iv)
      cipher.setAAD(Buffer.from(associatedData))
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      const sealed = Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')
      return `${SEAL_VERSION}.${current.kid}.${sealed}`
    },
    unseal (sealed, sessionKey, associatedData) {
      const [version, kid, payload] = sealed.split('.')
      const secret = kid === undefined ? undefined : byKid.get(kid)
      if (version !== SEAL_VERSION || !secret || payload === undefined) {
        throw new Error('sealed with an unknown key')
      }
      const bytes = Buffer.from(payload, 'base64url')
      const decipher = createDecipheriv('aes-256-gcm', dataKey(secret, sessionKey), bytes.subarray(0, IV_BYTES))
      decipher.setAAD(Buffer.from(associatedData))
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
      return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    },
    isStale (sealed) {
      return sealed.split('.')[1] !== current.kid
    },
  }
}
