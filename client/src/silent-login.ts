/**
 * Silent login by a top-level navigation: `/bff/login?prompt=none` goes to
 * the IdP and straight back through redirects only, so no page is shown, and
 * the app reloads at `returnTo`. A marker in `returnTo` tells that load it is
 * the answer; the gateway adds `error=login_required` (or the IdP's
 * `consent_required`, `interaction_required`, …) when it failed.
 *
 * Not a hidden iframe: the gateway forbids framing (`frame-ancestors 'none'`)
 * and browsers that partition third-party cookies hide the IdP's session
 * from a frame anyway.
 */
import type { BffUser } from './user.js'

export const SILENT_LOGIN_MARKER = 'bff_silent'

export type SilentLoginError =
  | 'login_required' | 'consent_required' | 'interaction_required' | 'account_selection_required'
  | (string & {})

export type SilentLoginResult =
  | { signedIn: true, user: BffUser }
  | { signedIn: false, error: SilentLoginError }

/** `returnTo` with the marker added to its query (before any fragment). */
export function markReturnTo (returnTo: string): string {
  const hashAt = returnTo.indexOf('#')
  const [beforeHash, hash] = hashAt === -1 ? [returnTo, ''] : [returnTo.slice(0, hashAt), returnTo.slice(hashAt)]
  return `${beforeHash}${beforeHash.includes('?') ? '&' : '?'}${SILENT_LOGIN_MARKER}=1${hash}`
}

export interface SilentLoginAnswer {
  /** The `error` the gateway added, if any. */
  error?: string
  /** The page's URL without the marker and the error parameters, for `history.replaceState`. */
  cleanUrl: string
}

/** Reads the page's URL: the answer to a silent login, or undefined for an ordinary page load. */
export function silentLoginAnswer (pageUrl: string): SilentLoginAnswer | undefined {
  const url = new URL(pageUrl)
  if (!url.searchParams.has(SILENT_LOGIN_MARKER)) return undefined
  const error = url.searchParams.get('error') ?? undefined
  for (const name of [SILENT_LOGIN_MARKER, 'error', 'error_description']) url.searchParams.delete(name)
  return { ...(error ? { error } : {}), cleanUrl: url.pathname + url.search + url.hash }
}
