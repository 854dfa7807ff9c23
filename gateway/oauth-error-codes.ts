/**
 * The OAuth error codes an identity provider may answer an authorization or
 * token request with, as registered: RFC 6749 (§4.1.2.1, §5.2), OpenID
 * Connect Core (§3.1.2.6) and the IANA "OAuth Extensions Error" registry.
 *
 * An `error` parameter is whatever the sender wrote (a forged callback can say
 * anything, at any length), yet it ends up as a metric label and an audit
 * reason, which must come from a closed set: anything not listed is `other`.
 */
export const OAUTH_ERROR_CODES = [
  // RFC 6749
  'invalid_request', 'unauthorized_client', 'access_denied', 'unsupported_response_type', 'invalid_scope',
  'server_error', 'temporarily_unavailable', 'invalid_client', 'invalid_grant', 'unsupported_grant_type',
  // OpenID Connect Core
  'interaction_required', 'login_required', 'account_selection_required', 'consent_required',
  'invalid_request_uri', 'invalid_request_object', 'request_not_supported', 'request_uri_not_supported',
  'registration_not_supported',
  // RFC 7009, RFC 8628, RFC 8707, RFC 9396, RFC 9449, RFC 9470
  'unsupported_token_type', 'authorization_pending', 'slow_down', 'expired_token', 'invalid_target',
  'invalid_authorization_details', 'invalid_dpop_proof', 'use_dpop_nonce', 'insufficient_user_authentication',
] as const

export type OAuthErrorCode = typeof OAUTH_ERROR_CODES[number]

const REGISTERED: ReadonlySet<string> = new Set(OAUTH_ERROR_CODES)

/** The registered code `reported` names, or `other`. */
export function registeredOAuthError (reported: string): OAuthErrorCode | 'other' {
  return REGISTERED.has(reported) ? reported as OAuthErrorCode : 'other'
}
