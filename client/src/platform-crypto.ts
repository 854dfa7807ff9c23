/**
 * The two primitives the native flow needs besides the key store: random
 * bytes (PKCE verifier, state, proof ids) and SHA-256 (the S256 challenge).
 * WebCrypto by default; React Native apps without it pass their own
 * (see the README: expo-crypto).
 */
export interface PlatformCrypto {
  /** Fills `array` with cryptographically strong random bytes and returns it. */
  getRandomValues (array: Uint8Array): Uint8Array
  sha256 (data: Uint8Array): Promise<Uint8Array>
}

interface WebCryptoGlobal { crypto?: Crypto }

export function webPlatformCrypto (): PlatformCrypto {
  const crypto = () => {
    const found = (globalThis as WebCryptoGlobal).crypto
    if (!found?.subtle) throw new TypeError('no WebCrypto here: pass the `crypto` option (random bytes and SHA-256)')
    return found
  }
  return {
    getRandomValues: (array) => crypto().getRandomValues(array),
    // The copy sits on a plain ArrayBuffer, the only kind `BufferSource` admits.
    sha256: async (data) => new Uint8Array(await crypto().subtle.digest('SHA-256', new Uint8Array(data))),
  }
}
