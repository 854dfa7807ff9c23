/**
 * DPoP keys (RFC 9449) of the gateway's sessions, and the proofs signed with
 * them. One ES256 key pair per session, made once and sealed with its tokens
 * (as a private JWK); the gateway's own key, for client-credentials tokens,
 * lives as long as the process.
 *
 * Opened keys are kept per session handle, so a request signs its proof with
 * a key imported long before: Node's synchronous `sign` on a KeyObject, no
 * promise, nothing imported per request. The WebCrypto pair openid-client
 * needs for the IdP's token endpoint is made only when a token is fetched.
 */
import { createHash, createPrivateKey, randomUUID, sign, webcrypto, type KeyObject } from 'node:crypto'
import type { DpopPrivateJwk } from '../session/active-session.js'

export interface DpopProofClaims {
  /** The request's method. */
  htm: string
  /** The request's URL without query or fragment. */
  htu: string
  /** The access token the proof goes with (its hash becomes `ath`). */
  accessToken: string
  /** The server's last `DPoP-Nonce`, if it gave one. */
  nonce?: string
}

/** An opened DPoP key: signs proofs, and gives openid-client its key pair for the IdP. */
export interface DpopKey {
  /** A fresh proof (`typ: dpop+jwt`, ES256) for one request. */
  proof (claims: DpopProofClaims): string
  /** The same key as a WebCrypto pair, for openid-client's proofs at the token endpoint. */
  keyPair (): Promise<CryptoKeyPair>
}

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const

/** A new key pair for a session, as the private JWK it is sealed as. */
export async function generateDpopKey (): Promise<DpopPrivateJwk> {
  const pair = await webcrypto.subtle.generateKey(ES256, true, ['sign', 'verify'])
  const { x, y, d } = await webcrypto.subtle.exportKey('jwk', pair.privateKey)
  if (!x || !y || !d) throw new Error('the runtime exported an EC key without x, y or d')
  return { kty: 'EC', crv: 'P-256', x, y, d }
}

const encodeJson = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Opens a private JWK: the signing key and the proof header, computed once. */
export function openDpopKey (jwk: DpopPrivateJwk): DpopKey {
  const privateKey: KeyObject = createPrivateKey({ key: { ...jwk }, format: 'jwk' })
  const { kty, crv, x, y } = jwk
  const header = encodeJson({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })
  let pair: Promise<CryptoKeyPair> | undefined
  return {
    proof (claims) {
      const payload = encodeJson({
        jti: randomUUID(),
        htm: claims.htm,
        htu: claims.htu,
        iat: Math.floor(Date.now() / 1000),
        ath: createHash('sha256').update(claims.accessToken).digest('base64url'),
        ...(claims.nonce !== undefined ? { nonce: claims.nonce } : {}),
      })
      const signingInput = `${header}.${payload}`
      // JWS wants the raw r||s form of an ECDSA signature, not DER.
      const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' })
      return `${signingInput}.${signature.toString('base64url')}`
    },
    keyPair () {
      pair ??= Promise.all([
        webcrypto.subtle.importKey('jwk', { ...jwk }, ES256, false, ['sign']),
        // openid-client exports the public key into the proof's header: it must be extractable.
        webcrypto.subtle.importKey('jwk', { kty, crv, x, y }, ES256, true, ['verify']),
      ]).then(([privateKey, publicKey]) => ({ privateKey, publicKey }))
      return pair
    },
  }
}

/**
 * Opened keys of sessions, by session handle, the least recently used forgotten first past
 * `maxEntries` (a session's key never changes, so an ended session's simply ages out).
 */
export interface DpopKeyring {
  /** The session's opened key (opened now if not kept). */
  forSession (handle: string, jwk: DpopPrivateJwk): DpopKey
}

export function createDpopKeyring (maxEntries = 10_000): DpopKeyring {
  const keys = new Map<string, { d: string, key: DpopKey }>()
  return {
    forSession (handle, jwk) {
      const kept = keys.get(handle)
      if (kept !== undefined && kept.d === jwk.d) {
        keys.delete(handle)
        keys.set(handle, kept)
        return kept.key
      }
      const key = openDpopKey(jwk)
      if (keys.size >= maxEntries) keys.delete(keys.keys().next().value as string)
      keys.set(handle, { d: jwk.d, key })
      return key
    },
  }
}
