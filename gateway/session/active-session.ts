/**
 * A session as the gateway holds it while serving one of its requests: opened
 * (decrypted) with the key from its cookie.
 */
import type { SessionCookieValue } from './session-cookie.js'
import type { SessionMeta } from './store.js'

/** An access token narrowed to one API (RFC 8707 / RFC 8693), kept beside the session's own. */
export interface ApiToken {
  token: string
  /** Epoch milliseconds. */
  expiresAt: number
  /** Bound to the session's DPoP key (RFC 9449). */
  dpop?: true
}

/**
 * Everything about a session that is encrypted at rest. Kept to what requests need: it is
 * one record, read (and opened) on every request that misses the cache, and one per signed-in
 * user in Redis. The ID token is not among it: once the login has verified it nothing reads it
 * (the logout URL carries no `id_token_hint`, which would hand it to the browser).
 */
export interface SessionSecrets {
  accessToken: string
  /** The access token is bound to the session's DPoP key. */
  accessTokenDpop?: true
  refreshToken?: string
  /** Epoch milliseconds. */
  accessTokenExpiresAt: number
  csrfToken: string
  claims: Record<string, unknown>
  roles: string[]
  /** The authentication context class the ID token of the login named (`acr`), if any. */
  acr?: string
  /** When the user authenticated (the ID token's `auth_time`), epoch milliseconds, if the IdP said. */
  authTime?: number
  /** The session's count of refresh requests when these tokens were obtained (see `SessionMarks`). */
  refreshRequestsSeen?: number
  /** Narrowed tokens by audience, each fetched when a route first needs it. */
  apiTokens?: Record<string, ApiToken>
  /**
   * The audiences the login asked the IdP for. Only these are ever asked for at a refresh: at
   * some IdPs (oidc-provider) a refresh for an audience the grant lacks fails after rotating the
   * refresh token, which loses the whole grant.
   */
  audiences?: string[]
  /** The session's DPoP key pair (ES256), as a private JWK. */
  dpopKey?: DpopPrivateJwk
}

/** A P-256 private key as a JWK (RFC 7518 section 6.2), the members the gateway keeps. */
export interface DpopPrivateJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
  d: string
}

export interface ActiveSession {
  handle: string
  version: number
  meta: SessionMeta
  lastSeenAt: number
  idleExpiresAt: number
  secrets: SessionSecrets
  /** Refreshes asked for from elsewhere, as last read from the store; more than the tokens saw means one is due. */
  refreshRequests?: number
  /** The session's `acr` is no longer trusted (an assurance level changed at the IdP). */
  acrForgotten?: boolean
  /** Needed to re-seal after a refresh; never logged. */
  cookie: SessionCookieValue
}

/** Who signed in at the identity provider, and with which tokens: what a session is created from. */
export interface SignedIn {
  identity: { sub: string, sid?: string }
  secrets: Omit<SessionSecrets, 'csrfToken'>
}

/** A native app's session: bound to the app's key, usable only with its DPoP proofs, never from a cookie. */
export function isDeviceBound (session: Pick<ActiveSession, 'meta'>): boolean {
  return session.meta.dpopJkt !== undefined
}
