/**
 * A native app's sign-in through the system browser (RFC 8252): what
 * `/bff/login?client=native` must carry, and where the browser goes back to
 * the app once the identity provider is done: its registered redirect URI
 * with a handoff code, or with the error, and always the app's `state`.
 *
 * Nothing here reaches the identity provider: a request that fails these
 * checks is refused before any redirect, so an unregistered URI can never be
 * sent a code, or even an error.
 */
import { InvalidRedirectUri, InvalidRequest, publicCode } from '../errors.js'
import { OidcRejectedError } from './oidc-client.js'

/** What a native app asked for at /bff/login; kept with the login until the callback. */
export interface NativeLoginRequest {
  /** One of NATIVE_REDIRECT_URIS, exactly. */
  redirectUri: string
  /** S256 of the app's PKCE verifier: the handoff code is redeemable only with that verifier. */
  codeChallenge: string
  /** The app's own `state`, echoed back to it. */
  state: string
}

// S256 of any verifier: 32 bytes, base64url without padding.
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/
// Printable ASCII; long enough for any random value or a small JSON-in-base64 an app may use.
const APP_STATE = /^[!-~]{1,512}$/

const single = (value: unknown): string | undefined => typeof value === 'string' ? value : undefined

/**
 * The native login `query` asks for, or undefined when it is a browser's login (no `client`).
 * @throws InvalidRedirectUri when `redirect_uri` is not registered (checked first: nothing may be sent there)
 * @throws InvalidRequest when `client`, `code_challenge`, `code_challenge_method` or `state` is missing or wrong
 */
export function nativeLoginOf (query: Record<string, unknown>, registered: readonly string[]): NativeLoginRequest | undefined {
  const client = query.client
  if (client === undefined) return undefined
  if (client !== 'native') throw new InvalidRequest('client must be "native" when given')
  const redirectUri = single(query.redirect_uri)
  if (redirectUri === undefined || !registered.includes(redirectUri)) throw new InvalidRedirectUri()
  const codeChallenge = single(query.code_challenge)
  if (codeChallenge === undefined || !S256_CHALLENGE.test(codeChallenge)) {
    throw new InvalidRequest('code_challenge must be the base64url S256 hash of a PKCE verifier (43 characters)')
  }
  if (query.code_challenge_method !== 'S256') throw new InvalidRequest('code_challenge_method must be S256')
  const state = single(query.state)
  if (state === undefined || !APP_STATE.test(state)) throw new InvalidRequest('state is required: 1 to 512 printable ASCII characters')
  return { redirectUri, codeChallenge, state }
}

/** The app's redirect URI with `params` and the app's `state` added to its query. */
export function appRedirect (native: NativeLoginRequest, params: { code: string } | { error: string }): string {
  const url = new URL(native.redirectUri)
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
  url.searchParams.set('state', native.state)
  return url.href
}

// What the identity provider may say that the app should hear as such (the user said no, or a
// silent login needs the user); every other refusal is the gateway's `login_failed`.
const PASSED_THROUGH = new Set(['access_denied', 'login_required', 'consent_required', 'interaction_required', 'account_selection_required'])

/**
 * The `error` the app is sent for a failed sign-in: the identity provider's answer when it is
 * about the user, else the gateway's public code (`login_failed`, `idp_unavailable`, and
 * whatever the sign-in's own checks refuse with, e.g. `account_disabled`); `server_error` for
 * anything unforeseen.
 */
export function nativeLoginError (error: unknown): string {
  const rejected = error instanceof Error && error.cause instanceof OidcRejectedError ? error.cause : undefined
  if (rejected && PASSED_THROUGH.has(rejected.oauthError)) return rejected.oauthError
  return publicCode((error as { code?: unknown } | undefined)?.code) ?? 'server_error'
}
