/**
 * Step-up: a request that needs a stronger (`acr`) or more recent
 * (`max_age`) sign-in than the session has. The route policy's rules and an
 * upstream's RFC 9470 challenge both say what is needed; the browser gets a
 * `/bff/login` URL that asks the identity provider for it, and the login
 * that follows replaces the session with one that has it.
 */
import type { ActiveSession } from '../session/active-session.js'
import { parseReturnTo } from './return-to.js'

/** What a request asks of the session's sign-in: one of these acr values, and/or at most this old. */
export interface StepUpNeed {
  acrValues?: readonly string[]
  /** Seconds since the user authenticated (`auth_time`). */
  maxAge?: number
}

/** The session's `acr`, unless an assurance-level change at the IdP made it forget it. */
export function trustedAcr (session: Pick<ActiveSession, 'secrets' | 'acrForgotten'>): string | undefined {
  return session.acrForgotten ? undefined : session.secrets.acr
}

/**
 * What the session falls short of, or undefined when it meets `need`. Falling short of any part
 * asks for all of it again, so the new sign-in does not lose what this one had (an IdP asked only
 * for a recent sign-in gives its default level). A session without `auth_time` (the IdP gave none;
 * it does when asked for `max_age`) is taken to be too old.
 *
 * @param now the current time, epoch milliseconds
 */
export function stepUpShortfall (need: StepUpNeed, session: Pick<ActiveSession, 'secrets' | 'acrForgotten'>, now: number): StepUpNeed | undefined {
  const acr = trustedAcr(session)
  const acrShort = need.acrValues !== undefined && (acr === undefined || !need.acrValues.includes(acr))
  const { authTime } = session.secrets
  const ageShort = need.maxAge !== undefined && (authTime === undefined || secondsSince(authTime, now) > need.maxAge)
  return acrShort || ageShort ? need : undefined
}

/**
 * Whole seconds elapsed, as `auth_time` is given and as an IdP judges `max_age` (oidc-provider:
 * now in whole seconds minus the login's second). Counting finer would ask for a step-up in the
 * last second of `maxAge` that the IdP answers from its session, with the same `auth_time`, which
 * falls short again.
 */
function secondsSince (epochMs: number, now: number): number {
  return Math.floor(now / 1000) - Math.floor(epochMs / 1000)
}

/**
 * Where the browser goes after the step-up: the page that made the request, when its `Referer`
 * names a path of ours that `returnTo` accepts; else `/`. (A proxied request's own path is an API
 * call, not a page. The gateway's pages send no `Referer`, by its `Referrer-Policy`; a page that
 * wants to come back elsewhere changes `returnTo` in the URL it is given.)
 */
export function stepUpReturnTo (referer: string | undefined, publicOrigin: string): string {
  if (referer === undefined) return '/'
  let url: URL
  try {
    url = new URL(referer)
  } catch {
    return '/'
  }
  if (url.origin !== publicOrigin) return '/'
  const returnTo = parseReturnTo(url.pathname + url.search)
  return returnTo.ok ? returnTo.path : '/'
}

/**
 * The `/bff/login` URL (relative: the page's own origin) that signs the user in again with what
 * `need` asks for; with neither part (an upstream that only said "not enough"), a fresh sign-in
 * (`prompt=login`).
 */
export function stepUpLoginUrl (need: StepUpNeed, returnTo: string): string {
  const query = [`returnTo=${encodeURIComponent(returnTo)}`]
  if (need.acrValues !== undefined) query.push(`acr_values=${encodeURIComponent(need.acrValues.join(' '))}`)
  if (need.maxAge !== undefined) query.push(`max_age=${need.maxAge}`)
  if (need.acrValues === undefined && need.maxAge === undefined) query.push('prompt=login')
  return `/bff/login?${query.join('&')}`
}
