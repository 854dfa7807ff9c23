/**
 * Silent login (`prompt=none`, OpenID Connect Core §3.1.2.1): the page asks
 * the identity provider to sign the user in without showing anything. When
 * the IdP cannot (no session there, consent or a choice of account needed),
 * its answer is not a failed login for the page to show as an error page, but
 * a fact to act on: the browser goes back to `returnTo` with `error=<code>`.
 */
import type { OAuthErrorCode } from '../oauth-error-codes.js'

/** The IdP's answers to `prompt=none` that mean "not without the user" (Core §3.1.2.6). */
export const SILENT_LOGIN_ERRORS: ReadonlySet<OAuthErrorCode | 'other'> = new Set<OAuthErrorCode>([
  'login_required', 'consent_required', 'interaction_required', 'account_selection_required',
])

/**
 * `returnTo` (a same-origin path as `parseReturnTo` accepted it) with `error=<code>` added to its
 * query, before any fragment; the rest is kept exactly as given. `code` is one of
 * SILENT_LOGIN_ERRORS, which need no encoding.
 */
export function withLoginError (returnTo: string, code: string): string {
  const hashAt = returnTo.indexOf('#')
  const beforeFragment = hashAt === -1 ? returnTo : returnTo.slice(0, hashAt)
  const fragment = hashAt === -1 ? '' : returnTo.slice(hashAt)
  const separator = !beforeFragment.includes('?') ? '?' : beforeFragment.endsWith('?') || beforeFragment.endsWith('&') ? '' : '&'
  return `${beforeFragment}${separator}error=${code}${fragment}`
}
