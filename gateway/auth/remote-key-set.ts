/**
 * A JWKS fetched from a URI that may only be known later (the identity
 * provider's, from discovery): jose's remote key set, cached and re-fetched by
 * jose, and made anew only when the URI changes.
 */
import { createRemoteJWKSet } from 'jose'

export type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>

export function remoteKeySet (jwksUri: () => Promise<string>): () => Promise<RemoteKeySet> {
  let keys: { uri: string, set: RemoteKeySet } | undefined
  return async () => {
    const uri = await jwksUri()
    if (keys?.uri !== uri) keys = { uri, set: createRemoteJWKSet(new URL(uri)) }
    return keys.set
  }
}
