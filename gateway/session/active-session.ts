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
}

export interface ActiveSession {
  handle: string
  version: number
  meta: SessionMeta
  lastSeenAt: number
  idleExpiresAt: number
  secrets: SessionSecrets
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
