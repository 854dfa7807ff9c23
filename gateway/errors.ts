/**
 * Every error the gateway answers with, in one place.
 *
 * The public code a client sees is derived from the constructor's code:
 * `BFF_SESSION_EXPIRED` → `"session_expired"`. Clients switch on that string,
 * so it is part of the contract and must never change meaning.
 */
import createError from '@fastify/error'

const create = (code: string, message: string, status: number) =>
  createError(`BFF_${code}`, message, status, Error, false)

// Always thrown with a message saying what is wrong with the request (the type makes it required).
export const InvalidRequest = createError<'BFF_INVALID_REQUEST', 400, [message: string, options?: { cause?: unknown }]>(
  'BFF_INVALID_REQUEST', '%s', 400, Error, false)
export const InvalidPath = create('INVALID_PATH', 'The request path is not in canonical form', 400)
export const InvalidReturnTo = create('INVALID_RETURN_TO', 'returnTo must be a same-origin relative path', 400)
export const InvalidState = create('INVALID_STATE', 'The login was not started by this browser or has expired', 400)
export const LoginFailed = create('LOGIN_FAILED', 'The identity provider did not complete the login', 401)
// The same public code: the login failed, though not because the IdP said no, but because what came
// back to the callback (or claimed to come from the IdP) failed the checks. The caller's fault, not an outage.
export const LoginResponseInvalid = create('LOGIN_FAILED', 'The login response failed validation', 400)
export const InvalidRedirectUri = create('INVALID_REDIRECT_URI', 'redirect_uri is not one of the registered native redirect URIs', 400)
export const InvalidGrant = create('INVALID_GRANT', 'The code is unknown, used or expired, or the code_verifier does not match', 400)
export const InvalidLogoutToken = create('INVALID_LOGOUT_TOKEN', 'The logout token is not valid', 400)
export const Unauthenticated = create('UNAUTHENTICATED', 'Sign in to continue', 401)
// Always thrown with a message saying which check of the proof failed (nothing secret: the caller made the proof).
export const InvalidDpopProof = createError<'BFF_INVALID_DPOP_PROOF', 401, [message: string, options?: { cause?: unknown }]>(
  'BFF_INVALID_DPOP_PROOF', '%s', 401, Error, false)
export const SessionExpired = create('SESSION_EXPIRED', 'The session has ended; sign in again', 401)
export const Csrf = create('CSRF', 'The request failed the cross-site request forgery check', 403)
export const AccountDisabled = create('ACCOUNT_DISABLED', 'This account is disabled; ask an administrator to enable it', 403)
export const Forbidden = create('FORBIDDEN', 'This request is not allowed for this user', 403)
export const NotFound = create('NOT_FOUND', 'No such endpoint', 404)
export const PayloadTooLarge = create('PAYLOAD_TOO_LARGE', 'The request body is too large', 413)
export const UriTooLong = create('URI_TOO_LONG', 'The request path is too long', 414)
export const HeadersTooLarge = create('HEADERS_TOO_LARGE', 'The request headers are too large', 431)
export const RequestTimeout = create('REQUEST_TIMEOUT', 'The request was not received in time', 408)
export const RateLimited = create('RATE_LIMITED', 'Too many requests; slow down', 429)
export const Internal = create('INTERNAL', 'Internal error', 500)
export const BadGateway = create('BAD_GATEWAY', 'The upstream API could not be reached', 502)
export const IdpUnavailable = create('IDP_UNAVAILABLE', 'The identity provider could not be reached', 502)
export const SessionStoreUnavailable = create('SESSION_STORE_UNAVAILABLE', 'The session store is unavailable; try again shortly', 503)
export const Overloaded = create('OVERLOADED', 'The gateway is overloaded; try again shortly', 503)
export const GatewayTimeout = create('GATEWAY_TIMEOUT', 'The upstream API did not answer in time', 504)

/** The session is good, but not for this request: the user must sign in again, as `loginUrl` asks (its own field in the body). */
export class StepUpRequired extends create('STEP_UP_REQUIRED', 'This request needs a stronger or more recent sign-in', 401) {
  /** A `/bff/login` URL asking the IdP for what is missing. */
  readonly loginUrl: string
  constructor (loginUrl: string, options?: { cause?: unknown }) {
    super(options)
    this.loginUrl = loginUrl
  }
}

/** A reloaded route policy file that cannot be used (admin API); the policy in force stays. */
export class InvalidRoutePolicy extends create('INVALID_ROUTE_POLICY', 'The route policy file was refused; the policy in force is unchanged', 400) {
  /** One line per problem, as the gateway prints them at start-up (`ROUTES_FILE: …`). */
  readonly problems: readonly string[]
  constructor (problems: readonly string[], options?: { cause?: unknown }) {
    super(options)
    this.problems = problems
  }
}

export interface ErrorBody {
  error: string
  message: string
  /** With `step_up_required`: where to sign in again. */
  loginUrl?: string
  /** With `invalid_route_policy`: what is wrong with the file, one line per problem. */
  problems?: readonly string[]
}

/** The public code of a gateway error (`BFF_FORBIDDEN` → `forbidden`), or undefined for foreign errors. */
export function publicCode (code: unknown): string | undefined {
  return typeof code === 'string' && code.startsWith('BFF_') ? code.slice(4).toLowerCase() : undefined
}

/** The first error of type `type` in `error`'s chain of causes, `error` itself included (five links at most). */
export function causeOfType<T extends Error> (error: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof type) return current
  }
  return undefined
}
