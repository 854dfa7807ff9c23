/**
 * The gateway's own tokens (OAuth client credentials grant), for routes of
 * token type `client`: one per audience, scopes and binding, kept in this
 * instance until near expiry and fetched one at a time (concurrent requests
 * wait for the one fetch). They are the gateway's, never a user's: nothing
 * here reads or writes a session.
 *
 * DPoP-bound client tokens are bound to a key of this instance, made when the
 * first one is needed and gone with the process.
 */
import { IdpUnavailable } from '../errors.js'
import { generateDpopKey, openDpopKey, type DpopKey } from './dpop-key.js'
import { OidcRejectedError, type OidcClient } from './oidc-client.js'
import type { OAuthErrorCode } from '../oauth-error-codes.js'

export interface ClientTokenTarget {
  /** Undefined: the IdP's default audience. */
  audience: string | undefined
  /** Space-separated. */
  scope: string | undefined
  dpop: boolean
}

/** A client token ready to send: the token, and the key that proves possession of it when bound. */
export interface ClientCredential {
  token: string
  dpopKey: DpopKey | undefined
}

export interface ClientTokenObserver {
  fetch (audience: string | undefined): void
  failure (audience: string | undefined, reason: 'rejected' | 'idp_unavailable', oauthError?: OAuthErrorCode | 'other'): void
}

export interface ClientTokensOptions {
  oidc: Pick<OidcClient, 'clientCredentials'>
  skewSeconds: number
  observer: ClientTokenObserver
  now?: () => number
}

export interface ClientTokens {
  /** A kept token for `target` with life left, or undefined (then `obtain`). */
  current (target: ClientTokenTarget): ClientCredential | undefined
  /** A token for `target`, fetched unless one is kept (or being fetched); throws IdpUnavailable. */
  obtain (target: ClientTokenTarget): Promise<ClientCredential>
}

interface Kept extends ClientCredential {
  expiresAt: number
}

export function createClientTokens (options: ClientTokensOptions): ClientTokens {
  const { oidc, observer } = options
  const now = options.now ?? Date.now
  const skewMs = options.skewSeconds * 1000
  const kept = new Map<string, Kept>()
  const fetching = new Map<string, Promise<ClientCredential>>()
  let instanceKey: Promise<DpopKey> | undefined

  const keyOf = (target: ClientTokenTarget) => `${target.dpop ? 'dpop' : 'bearer'} ${target.audience ?? ''} ${target.scope ?? ''}`

  function dpopKey (): Promise<DpopKey> {
    instanceKey ??= generateDpopKey().then(openDpopKey)
    // A failure (never expected) is not kept: the next fetch tries again.
    instanceKey.catch(() => { instanceKey = undefined })
    return instanceKey
  }

  async function fetchToken (target: ClientTokenTarget, key: string): Promise<ClientCredential> {
    const bound = target.dpop ? await dpopKey() : undefined
    observer.fetch(target.audience)
    try {
      const tokens = await oidc.clientCredentials({
        ...(target.audience !== undefined ? { resource: target.audience } : {}),
        ...(target.scope !== undefined ? { scope: target.scope } : {}),
        ...(bound ? { dpop: await bound.keyPair() } : {}),
      })
      const credential: Kept = { token: tokens.accessToken, dpopKey: bound, expiresAt: tokens.accessTokenExpiresAt }
      kept.set(key, credential)
      return credential
    } catch (error) {
      const rejected = error instanceof OidcRejectedError
      observer.failure(target.audience, rejected ? 'rejected' : 'idp_unavailable', rejected ? error.oauthError : undefined)
      // Refused or unreachable, the request cannot be served; the refusal's reason is in the audit trail.
      throw error instanceof IdpUnavailable ? error : new IdpUnavailable({ cause: error })
    }
  }

  function current (target: ClientTokenTarget): ClientCredential | undefined {
    const credential = kept.get(keyOf(target))
    return credential !== undefined && credential.expiresAt - skewMs > now() ? credential : undefined
  }

  return {
    current,
    obtain (target) {
      const ready = current(target)
      if (ready !== undefined) return Promise.resolve(ready)
      const key = keyOf(target)
      let pending = fetching.get(key)
      if (pending === undefined) {
        pending = fetchToken(target, key).finally(() => fetching.delete(key))
        fetching.set(key, pending)
      }
      return pending
    },
  }
}
