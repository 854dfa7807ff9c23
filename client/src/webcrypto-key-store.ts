/**
 * A DPoP key store on WebCrypto, with a NON-extractable P-256 private key:
 * script can sign with it but never read it. For web builds, tests and any
 * runtime with `crypto.subtle`. The key lives as long as this object unless
 * the app keeps the `CryptoKeyPair` (IndexedDB stores one without exporting
 * it) and passes it back next time.
 */
import type { DpopKeyStore, PublicJwk } from './dpop.js'
import { publicP256Jwk } from './dpop.js'

export interface WebCryptoKeyStoreOptions {
  /** A pair made earlier (by this store, then kept in IndexedDB). Default: a new pair. */
  keyPair?: CryptoKeyPair
  /** Default: `globalThis.crypto.subtle`. */
  subtle?: SubtleCrypto
}

export interface WebCryptoKeyStore extends DpopKeyStore {
  /** The pair, for the app to keep (structured-clonable; the private key stays non-extractable). */
  keyPair (): Promise<CryptoKeyPair>
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const

export function createWebCryptoKeyStore (options: WebCryptoKeyStoreOptions = {}): WebCryptoKeyStore {
  const subtle = options.subtle ?? globalThis.crypto.subtle
  let pair: Promise<CryptoKeyPair> | undefined = options.keyPair ? Promise.resolve(options.keyPair) : undefined
  const keyPair = () => {
    pair ??= subtle.generateKey(ALGORITHM, false, ['sign', 'verify'])
    return pair
  }
  let jwk: Promise<PublicJwk> | undefined
  return {
    keyPair,
    publicJwk () {
      // A public key is always exportable, whatever `extractable` said for the private one.
      jwk ??= keyPair().then(async ({ publicKey }) => publicP256Jwk(await subtle.exportKey('jwk', publicKey)))
      return jwk
    },
    async sign (data) {
      const { privateKey } = await keyPair()
      // WebCrypto's ECDSA signature is already r || s (IEEE P1363), as JWS wants.
      return new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, new Uint8Array(data)))
    },
  }
}
