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
