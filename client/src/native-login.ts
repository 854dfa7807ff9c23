/**
 * The native login's two ends: the `/bff/login?client=native…` URL the
 * system browser opens, and the redirect it comes back with
 * (`redirect_uri?code=…&state=…`, or `error=…&state=…`).
 */
import { BffError } from './bff-error.js'
import { loginParams, type LoginOptions } from './login-options.js'
import { queryOf, toQuery } from './query.js'

export interface NativeAuthorization {
  redirectUri: string
  codeChallenge: string
  state: string
}

export function nativeLoginUrl (origin: string, authorization: NativeAuthorization, options: LoginOptions): string {
  return `${origin}/bff/login?${toQuery({
    client: 'native',
    redirect_uri: authorization.redirectUri,
    code_challenge: authorization.codeChallenge,
    code_challenge_method: 'S256',
    state: authorization.state,
    ...loginParams(options),
  })}`
}

/** What an auth session gave back: a handoff code, or the reason there is none. */
export type NativeRedirect = { code: string } | { error: string, description?: string }

const withoutQuery = (url: string) => url.split(/[?#]/, 1)[0]

/**
 * Reads the redirect. Refuses (throws) one that is not for this login: another
 * address than `redirectUri`, or another `state` (a redirect some other party
 * started, RFC 6749 §10.12), before looking at what it carries.
 */
export function readNativeRedirect (redirectUrl: string, redirectUri: string, expectedState: string): NativeRedirect {
  if (withoutQuery(redirectUrl) !== withoutQuery(redirectUri)) {
    throw new BffError('invalid_response', 'the sign-in came back to another address than redirectUri')
  }
  const query = queryOf(redirectUrl)
  if (query.state !== expectedState) {
    throw new BffError('state_mismatch', 'the sign-in came back with another state than it started with: refused')
  }
  if (query.error) return { error: query.error, ...(query.error_description ? { description: query.error_description } : {}) }
  if (!query.code) throw new BffError('invalid_response', 'the sign-in came back without a code')
  return { code: query.code }
}
