/**
 * DPoP proofs (RFC 9449) for native calls: a JWT signed by a key that never
 * leaves the device, naming the request it is for. The gateway checks `htm`,
 * `htu` (its public URL plus the path, no query or fragment), `iat` (±60 s)
 * and that `jti` was never seen.
 */
import { base64url, base64urlJson } from './base64url.js'
import { randomToken } from './pkce.js'
import type { PlatformCrypto } from './platform-crypto.js'

/** The public half of a P-256 key, as a JWK. */
export interface PublicJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
}

/**
 * Where the app's signing key lives (Secure Enclave, Android Keystore,
 * WebCrypto with a non-extractable key, …). The library never sees the
 * private key: it asks for the public JWK and for signatures.
 */
export interface DpopKeyStore {
  /** The public key (EC P-256) as a JWK; other members are dropped, never sent. */
  publicJwk (): Promise<PublicJwk>
  /**
   * An ES256 signature of `data` (ECDSA P-256 over its SHA-256) as the 64
   * bytes `r || s`. Native modules that return DER: `derToJoseSignature`.
   */
  sign (data: Uint8Array): Promise<Uint8Array>
}

const ES256_SIGNATURE_BYTES = 64

/** Exactly the public members of a P-256 JWK: whatever else a key store returns stays out of every proof. */
export function publicP256Jwk (jwk: unknown): PublicJwk {
  const { kty, crv, x, y } = (jwk ?? {}) as Record<string, unknown>
  if (kty !== 'EC' || crv !== 'P-256' || typeof x !== 'string' || typeof y !== 'string') {
    throw new TypeError('the key store must hold an EC P-256 key (DPoP proofs are ES256)')
  }
  return { kty, crv, x, y }
}

export interface DpopProofRequest {
  method: string
  /** The gateway URL of the request without query and fragment. */
  htu: string
}

export interface DpopSigner {
  /** A fresh proof for one request. */
  proof (request: DpopProofRequest): Promise<string>
}

export function createDpopSigner (keyStore: DpopKeyStore, crypto: PlatformCrypto): DpopSigner {
  let jwk: Promise<PublicJwk> | undefined
  const publicJwk = () => {
    if (!jwk) {
      jwk = keyStore.publicJwk().then(publicP256Jwk)
      // Forget a failure, so the next call asks the key store again.
      jwk.catch(() => { jwk = undefined })
    }
    return jwk
  }
  return {
    async proof ({ method, htu }) {
      const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJwk() }
      const claims = {
        jti: randomToken(crypto, 16),
        htm: method.toUpperCase(),
        htu,
        iat: Math.floor(Date.now() / 1000),
      }
      const signingInput = `${base64urlJson(header)}.${base64urlJson(claims)}`
      const signature = await keyStore.sign(new TextEncoder().encode(signingInput))
      if (signature.length !== ES256_SIGNATURE_BYTES) {
        throw new TypeError(`the key store signed with ${signature.length} bytes; ES256 needs the 64-byte r || s (DER? use derToJoseSignature)`)
      }
      return `${signingInput}.${base64url(signature)}`
    },
  }
}
