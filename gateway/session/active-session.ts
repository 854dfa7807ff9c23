/**
 * A session as the gateway holds it while serving one of its requests: opened
 * (decrypted) with the key from its cookie.
 */
import type { SessionCookieValue } from './session-cookie.js'
import type { SessionMeta } from './store.js'

/** Everything about a session that is encrypted at rest. */
export interface SessionSecrets {
  accessToken: string
  refreshToken?: string
  idToken?: string
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
