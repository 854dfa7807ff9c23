/**
 * Sealed session data as gateways before format 2 wrote it (format 1): text
 * `v1.<key id>.<base64url of IV, ciphertext, tag>`, the JSON encrypted with
 * AES-256-GCM and not compressed. Tests use it to stand for a session stored by
 * an older version; test/unit/session-crypto.test.ts holds it to a value such a
 * gateway really wrote.
 */
import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

export function sealFormat1 (secret: string, plaintext: string, sessionKey: Buffer, associatedData: string, iv: Buffer = randomBytes(12)): string {
  const kid = createHash('sha256').update(`bff-kid:${secret}`).digest('base64url').slice(0, 8)
  const encryptionKey = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'bff/session-encryption', 32))
  const dataKey = Buffer.from(hkdfSync('sha256', encryptionKey, sessionKey, 'bff/session-data', 32))
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv)
  cipher.setAAD(Buffer.from(associatedData))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return `v1.${kid}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`
}
