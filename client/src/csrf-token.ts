/**
 * The CSRF token for unsafe requests: the `csrfToken` of the last
 * `/bff/user` answer (the auth state holds it), fetched when there is none.
 */
import type { AuthState } from './auth-state.js'
import type { BffUser } from './user.js'

export interface CsrfToken {
  /** The cached token, or a fresh one from `/bff/user`; undefined when nobody is signed in. */
  current (): Promise<string | undefined>
  /**
   * After a 403 `csrf` for a request that carried `used`: a token that may
   * do better. Another request may already have fetched one; otherwise ask.
   */
  replacing (used: string | undefined): Promise<string | undefined>
}

export function createCsrfToken (state: () => AuthState, user: () => Promise<BffUser | null>): CsrfToken {
  const cached = () => {
    const now = state()
    return now.status === 'signedIn' ? now.user.csrfToken : undefined
  }
  return {
    async current () {
      return cached() ?? (await user())?.csrfToken
    },
    async replacing (used) {
      const now = cached()
      if (now !== undefined && now !== used) return now
      return (await user())?.csrfToken
    },
  }
}
