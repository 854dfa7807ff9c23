/** PKCE (RFC 7636) with S256, and the random `state` of a native login. */
import { base64url } from './base64url.js'
import type { PlatformCrypto } from './platform-crypto.js'

/** `bytes` random bytes, base64url: 32 give a 43-character verifier, the shortest RFC 7636 allows. */
export function randomToken (crypto: PlatformCrypto, bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)))
}

/** `BASE64URL(SHA256(ASCII(verifier)))` */
export async function s256Challenge (crypto: PlatformCrypto, verifier: string): Promise<string> {
  return base64url(await crypto.sha256(new TextEncoder().encode(verifier)))
}

export interface Pkce {
  verifier: string
  challenge: string
}

export async function createPkce (crypto: PlatformCrypto): Promise<Pkce> {
  const verifier = randomToken(crypto)
  return { verifier, challenge: await s256Challenge(crypto, verifier) }
}
