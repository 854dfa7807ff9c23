/**
 * What a login asks of the IdP for the route policy's tokens, and what a new
 * session starts with besides its tokens: the audiences it asked for (the
 * only ones a refresh may later name) and, when some route sends a
 * DPoP-bound token of the user's, the session's key pair, with which the code
 * exchange binds the session's own token when routes without an audience
 * send it DPoP-bound.
 *
 * No `dpop_jkt` at the authorization endpoint: the code already needs the
 * gateway's client authentication and the PKCE verifier to be redeemed, and
 * the key would have to wait out the redirect in the login state.
 */
import type { SessionSecrets } from '../session/active-session.js'
import { generateDpopKey, openDpopKey } from './dpop-key.js'

/** What the route policy as a whole asks of every login. */
export interface LoginTokenNeeds {
  /** Every user-token audience of the policy, each asked for at login as an RFC 8707 `resource`. */
  audiences: string[]
  /** Routes without an audience send the session's own token DPoP-bound: bind it at the code exchange. */
  sessionTokenDpop: boolean
  /** Some route sends a DPoP-bound token of the user's: the session needs a key pair. */
  anyUserDpop: boolean
}

export interface LoginTokenBinding {
  /** The key pair to bind the code exchange's tokens to, when they must be. */
  dpop: CryptoKeyPair | undefined
  /** What the new session keeps besides its tokens. */
  secrets: Pick<SessionSecrets, 'audiences' | 'dpopKey' | 'accessTokenDpop'>
}

export interface LoginTokens {
  readonly needs: LoginTokenNeeds
  /** A new login's binding: made per login (a fresh key per session). */
  prepare (): Promise<LoginTokenBinding>
}

export function createLoginTokens (needs: LoginTokenNeeds): LoginTokens {
  return {
    needs,
    async prepare () {
      const dpopKey = needs.anyUserDpop ? await generateDpopKey() : undefined
      const dpop = dpopKey !== undefined && needs.sessionTokenDpop ? await openDpopKey(dpopKey).keyPair() : undefined
      return {
        dpop,
        secrets: {
          ...(needs.audiences.length > 0 ? { audiences: [...needs.audiences] } : {}),
          ...(dpopKey !== undefined ? { dpopKey } : {}),
          ...(dpop !== undefined ? { accessTokenDpop: true } : {}),
        },
      }
    },
  }
}
