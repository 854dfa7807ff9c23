/**
 * The user's token a route sends its upstream: the session's own, or one
 * narrowed to the route's API (its `audience`, and `scopes`), kept in the
 * session's sealed secrets beside the others until near its expiry.
 *
 * A narrowed token is obtained with the session's refresh token and RFC 8707
 * `resource` (+ `scope`), or by RFC 8693 exchange of the session's own access
 * token. Either way it runs holding the session's one refresh lock (so one
 * token call per session and audience across instances, and nothing else
 * spends the refresh token meanwhile) and is written by compare-and-set.
 *
 * A refresh only ever names an audience the login asked for (the session
 * keeps the list): at some IdPs a refresh for one the grant lacks fails only
 * after rotating the refresh token, which loses the whole grant. A session
 * from before its route named the audience is sent to sign in again.
 */
import { IdpUnavailable, SessionExpired, Unauthenticated } from '../errors.js'
import type { Revocation } from '../session/revocation.js'
import type { ActiveSession, SessionAccess, SessionSecrets } from '../session/sessions.js'
import type { DpopKey } from './dpop-key.js'
import { OidcRejectedError, type OidcClient, type TokenResult } from './oidc-client.js'
import type { OAuthErrorCode } from '../oauth-error-codes.js'
import type { TokenRefresher } from './token-refresher.js'

/** Which of the user's tokens a route sends (a route's token policy, `user` or `user-optional`). */
export interface UserTokenTarget {
  /** Undefined: the session's own token. */
  audience: string | undefined
  /** Space-separated, for a narrowed token. */
  scope: string | undefined
  grant: 'refresh_token' | 'token_exchange'
  dpop: boolean
}

/** Why a narrowed token could not be had (besides the session's end, which its own paths report). */
export type UserTokenFailure = 'not_granted' | 'rejected' | 'idp_unavailable'

export interface UserTokenObserver {
  /** A call to the token endpoint for a narrowed token. */
  fetch (audience: string, grant: UserTokenTarget['grant']): void
  failure (audience: string, grant: UserTokenTarget['grant'], reason: UserTokenFailure, session: ActiveSession, oauthError?: OAuthErrorCode | 'other'): void
}

export interface UserTokensOptions {
  refresher: TokenRefresher
  sessions: Pick<SessionAccess, 'saveSecrets' | 'reload'>
  revocation: Revocation
  oidc: Pick<OidcClient, 'exchangeToken'>
  skewSeconds: number
  observer: UserTokenObserver
  now?: () => number
}

export interface UserTokens {
  /** Whether the session needs a token call before it holds a usable token for `target`. */
  stale (session: ActiveSession, target: UserTokenTarget): boolean
  /** The session, holding a usable token for `target`; throws SessionExpired, Unauthenticated or IdpUnavailable. */
  obtain (session: ActiveSession, target: UserTokenTarget): Promise<ActiveSession>
  /** The token for `target` of a session that holds a usable one. */
  token (session: ActiveSession, target: UserTokenTarget): string
  /** The key to prove possession of the token for `target` with, when it is DPoP-bound. */
  dpopKey (session: ActiveSession, target: UserTokenTarget): DpopKey | undefined
}

/**
 * The secrets with `tokens`' access token kept for `audience`, marked DPoP-bound when it was asked
 * for with a proof (an IdP that binds nothing leaves the API to refuse it, rather than the gateway
 * to ask again on every request).
 */
function withApiToken (secrets: SessionSecrets, audience: string, tokens: TokenResult, dpop: boolean): SessionSecrets {
  return {
    ...secrets,
    apiTokens: {
      ...secrets.apiTokens,
      [audience]: { token: tokens.accessToken, expiresAt: tokens.accessTokenExpiresAt, ...(dpop ? { dpop: true } : {}) },
    },
  }
}

export function createUserTokens (options: UserTokensOptions): UserTokens {
  const { refresher, sessions, observer } = options
  const now = options.now ?? Date.now
  const skewMs = options.skewSeconds * 1000

  function apiTokenStale (session: ActiveSession, audience: string, dpop: boolean): boolean {
    const kept = session.secrets.apiTokens?.[audience]
    return kept === undefined || kept.expiresAt - skewMs <= now() || (kept.dpop === true) !== dpop
  }

  function byRefresh (current: ActiveSession, audience: string, target: UserTokenTarget): Promise<ActiveSession> {
    if (!current.secrets.audiences?.includes(audience)) {
      observer.failure(audience, target.grant, 'not_granted', current)
      return Promise.reject(new Unauthenticated())
    }
    observer.fetch(audience, target.grant)
    return refresher.spendRefreshToken(current, {
      request: { resource: audience, ...(target.scope !== undefined ? { scope: target.scope } : {}) },
      dpop: target.dpop,
      stillNeeded: (candidate) => apiTokenStale(candidate, audience, target.dpop),
      place: (secrets, tokens) => withApiToken(secrets, audience, tokens, target.dpop),
      userInfo: false,
    }).catch((error: unknown) => {
      if (error instanceof IdpUnavailable) observer.failure(audience, target.grant, 'idp_unavailable', current)
      throw error
    })
  }

  async function byExchange (session: ActiveSession, audience: string, target: UserTokenTarget): Promise<ActiveSession> {
    // The subject token must be alive: refresh it first, under the same lock.
    const current = refresher.ownTokenStale(session) ? await refresher.refreshOwnToken(session) : session
    const keyed = target.dpop ? await refresher.withDpopKey(current) : undefined
    observer.fetch(audience, target.grant)
    let tokens: TokenResult
    try {
      tokens = await options.oidc.exchangeToken(current.secrets.accessToken, {
        resource: audience,
        ...(target.scope !== undefined ? { scope: target.scope } : {}),
        ...(keyed ? { dpop: keyed.keyPair } : {}),
      })
    } catch (error) {
      if (error instanceof OidcRejectedError && error.oauthError === 'invalid_grant') {
        // The IdP no longer issues tokens for this user (disabled, gone): the session is over.
        observer.failure(audience, target.grant, 'rejected', current, error.oauthError)
        await options.revocation.revoke({ session: current, reason: 'refresh_rejected' })
        throw new SessionExpired({ cause: error })
      }
      // Any other refusal is about the request (the client may not exchange, the API is unknown):
      // the session stays, and the request cannot be served.
      const rejected = error instanceof OidcRejectedError
      observer.failure(audience, target.grant, rejected ? 'rejected' : 'idp_unavailable', current, rejected ? error.oauthError : undefined)
      throw error instanceof IdpUnavailable ? error : new IdpUnavailable({ cause: error })
    }
    const saved = await sessions.saveSecrets(current, withApiToken(keyed?.secrets ?? current.secrets, audience, tokens, target.dpop))
    if (saved) return saved
    // Someone wrote the session while we held the lock (our lease lapsed, or it ended).
    const latest = await sessions.reload(current)
    if (!latest) throw new SessionExpired()
    if (!apiTokenStale(latest, audience, target.dpop)) return latest
    throw new IdpUnavailable()
  }

  return {
    stale (session, target) {
      return target.audience === undefined
        ? refresher.ownTokenStale(session, target.dpop)
        : apiTokenStale(session, target.audience, target.dpop)
    },
    obtain (session, target) {
      const { audience } = target
      if (audience === undefined) return refresher.ensureFresh(session, { dpop: target.dpop })
      return refresher.lock.run(session, {
        name: `api:${target.dpop ? 'dpop' : 'bearer'}:${audience}`,
        done: (candidate) => !apiTokenStale(candidate, audience, target.dpop),
        run: (current) => target.grant === 'token_exchange'
          ? byExchange(current, audience, target)
          : byRefresh(current, audience, target),
      })
    },
    token (session, target) {
      if (target.audience === undefined) return session.secrets.accessToken
      return session.secrets.apiTokens?.[target.audience]?.token ?? ''
    },
    dpopKey (session, target) {
      const { secrets } = session
      const bound = target.audience === undefined ? secrets.accessTokenDpop === true : secrets.apiTokens?.[target.audience]?.dpop === true
      if (!bound || secrets.dpopKey === undefined) return undefined
      return refresher.dpopKeys.forSession(session.handle, secrets.dpopKey)
    },
  }
}
