/** What `GET /bff/user` answers for a signed-in user: profile and session times, never a token. */
export interface BffUser {
  sub: string
  name?: string
  email?: string
  roles: string[]
  /** The ID token's claims the gateway passes on. */
  claims: Record<string, unknown>
  /** Browser sessions: the value of `X-CSRF-Token` for changes. The client sends it for you. */
  csrfToken?: string
  /** ISO 8601: when the session ends at the latest. */
  expiresAt: string
  /** ISO 8601: when the session ends unless it is used before. */
  idleExpiresAt: string
  /** Authentication context class of the login, when the IdP reports one. */
  acr?: string
  /** ISO 8601: when the user last authenticated at the IdP. */
  authTime?: string
}

export function isBffUser (value: unknown): value is BffUser {
  return typeof value === 'object' && value !== null && typeof (value as { sub?: unknown }).sub === 'string'
}
