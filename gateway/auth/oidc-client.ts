/**
 * The gateway's side of OpenID Connect, on openid-client: discovery, the
 * authorization-code + PKCE login, refresh, revocation and end-session.
 *
 * No Fastify here. Failures leave this module as one of three errors, and the
 * distinction decides what the caller does (a login answers 401, 400 or 502; a
 * refresh destroys the session only when the IdP refused):
 *  - `OidcRejectedError`: the IdP answered with an OAuth error (the grant or
 *    client is no good, or the user said no);
 *  - `OidcResponseInvalidError`: a response, or a callback claiming to be one,
 *    failed openid-client's own checks (issuer, state, code, ID token);
 *  - `IdpUnavailable`: the IdP could not be used (network, timeout, 5xx,
 *    discovery, anything unforeseen).
 */
import * as oidc from 'openid-client'
import { IdpUnavailable } from '../errors.js'
import { registeredOAuthError, type OAuthErrorCode } from './oauth-error-codes.js'

export interface OidcClientOptions {
  issuer: string
  clientId: string
  clientSecret: string
  redirectUri: string
  scopes: string
  authParams: Record<string, string>
  allowInsecureHttp: boolean
  httpTimeoutSeconds: number
  /** Leeway, in seconds, for the time claims of the IdP's ID tokens (its clock is not ours). */
  clockToleranceSeconds: number
}

export interface TokenResult {
  accessToken: string
  refreshToken?: string
  idToken?: string
  /** Epoch milliseconds. */
  accessTokenExpiresAt: number
  /** Verified ID token claims, when the response carried an ID token. */
  idTokenClaims?: Record<string, unknown>
}

export interface LoginChallenge {
  state: string
  nonce: string
  codeVerifier: string
}

/** The IdP answered with an OAuth error (e.g. `invalid_grant`); retrying will not help. */
export class OidcRejectedError extends Error {
  /** The registered code the IdP gave, or `other`: safe as a metric label. */
  readonly oauthError: OAuthErrorCode | 'other'
  /** The code as reported, which a forged callback chooses freely (any text, any length). */
  readonly reportedError: string
  constructor (reportedError: string, options?: { cause?: unknown }) {
    const oauthError = registeredOAuthError(reportedError)
    super(`identity provider refused: ${oauthError}`, options)
    this.name = 'OidcRejectedError'
    this.oauthError = oauthError
    this.reportedError = reportedError
  }
}

/**
 * A response that failed openid-client's own checks: a callback with the wrong `iss`, none, no
 * `code` or two; an ID token with the wrong nonce, signature or times; a body that is not the
 * JSON it should be. Not the IdP's verdict, so never a reason to end a session.
 */
export class OidcResponseInvalidError extends Error {
  /** openid-client's code for the check that failed (e.g. `OAUTH_INVALID_RESPONSE`). */
  readonly check: string
  constructor (check: string, options?: { cause?: unknown }) {
    super(`response failed the OIDC client's checks: ${check}`, options)
    this.name = 'OidcResponseInvalidError'
    this.check = check
  }
}

export interface OidcClient {
  /** Resolves once discovery succeeded; retried on every call until it does. */
  ready (): Promise<void>
  newLoginChallenge (): LoginChallenge
  authorizationUrl (challenge: LoginChallenge, extra?: Record<string, string>): Promise<URL>
  exchangeCode (callbackUrl: URL, challenge: LoginChallenge): Promise<TokenResult>
  refresh (refreshToken: string): Promise<TokenResult>
  userInfo (accessToken: string, sub: string): Promise<Record<string, unknown>>
  /** RFC 7009; a no-op when the IdP has no revocation endpoint. */
  revoke (token: string, hint: 'refresh_token' | 'access_token'): Promise<void>
  /** The IdP's end-session URL for RP-initiated logout, if it has one. */
  endSessionUrl (idTokenHint: string | undefined, postLogoutRedirectUri: string): Promise<string | undefined>
  /** The provider metadata's JWKS URI (for back-channel logout tokens). */
  jwksUri (): Promise<string>
}

const REJECTIONS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client', 'invalid_scope', 'access_denied', 'invalid_request', 'invalid_target'])

/** openid-client's codes for checks of what it received (oauth4webapi's constants); the rest are about getting an answer at all. */
const LOCAL_CHECKS = new Set([
  'OAUTH_INVALID_RESPONSE', // iss, state, code, a parameter given twice, a malformed claim
  'OAUTH_UNSUPPORTED_OPERATION', // implicit or hybrid parameters in a code-flow callback, an unsupported algorithm
  'OAUTH_PARSE_ERROR', // a body that does not parse
  'OAUTH_RESPONSE_IS_NOT_JSON',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED', // nonce, aud, iss of the ID token
  'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
  'OAUTH_KEY_SELECTION_FAILED', // an ID token signed by no key the IdP publishes
  'OAUTH_JWT_USERINFO_EXPECTED',
])

/**
 * Turns any openid-client / fetch failure into one of the three errors above. What is not
 * recognised as the IdP's answer or a failed check (fetch's TypeError, a timeout or abort, an
 * unexpected HTTP status such as a 5xx without an OAuth body, a WWW-Authenticate challenge) is
 * the IdP being unusable.
 */
export function translateOidcError (error: unknown): Error {
  if (error instanceof OidcRejectedError || error instanceof OidcResponseInvalidError || error instanceof IdpUnavailable) return error
  if (error instanceof oidc.AuthorizationResponseError) return new OidcRejectedError(error.error, { cause: error })
  if (error instanceof oidc.ResponseBodyError) {
    if (error.status < 500 && REJECTIONS.has(error.error)) return new OidcRejectedError(error.error, { cause: error })
    return new IdpUnavailable({ cause: error })
  }
  if (error instanceof oidc.ClientError && error.code !== undefined && LOCAL_CHECKS.has(error.code)) {
    return new OidcResponseInvalidError(error.code, { cause: error })
  }
  return new IdpUnavailable({ cause: error })
}

export function createOidcClient (options: OidcClientOptions): OidcClient {
  let discovered: Promise<oidc.Configuration> | undefined

  function configuration (): Promise<oidc.Configuration> {
    // Memoise success only: an IdP that was down at start is retried on the next use.
    discovered ??= oidc.discovery(
      new URL(options.issuer),
      options.clientId,
      { [oidc.clockTolerance]: options.clockToleranceSeconds },
      oidc.ClientSecretBasic(options.clientSecret),
      {
        timeout: options.httpTimeoutSeconds,
        ...(options.allowInsecureHttp ? { execute: [oidc.allowInsecureRequests] } : {}),
      }
    ).then(config => {
      config.timeout = options.httpTimeoutSeconds
      return config
    }, error => {
      discovered = undefined
      throw error
    })
    return discovered
  }

  async function call<T> (operation: (config: oidc.Configuration) => Promise<T>): Promise<T> {
    let config: oidc.Configuration
    try {
      config = await configuration()
    } catch (error) {
      // Whatever went wrong with discovery (even a document that fails a check), the IdP is not usable yet.
      throw new IdpUnavailable({ cause: error })
    }
    try {
      return await operation(config)
    } catch (error) {
      throw translateOidcError(error)
    }
  }

  function toTokenResult (response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): TokenResult {
    const expiresIn = response.expiresIn()
    const claims = response.id_token ? response.claims() : undefined
    return {
      accessToken: response.access_token,
      ...(response.refresh_token ? { refreshToken: response.refresh_token } : {}),
      ...(response.id_token ? { idToken: response.id_token } : {}),
      // Without expires_in, assume a short life so the gateway refreshes rather than forwarding a dead token.
      accessTokenExpiresAt: Date.now() + (expiresIn ?? 60) * 1000,
      ...(claims ? { idTokenClaims: { ...claims } } : {}),
    }
  }

  return {
    async ready () {
      await call(async () => undefined)
    },
    newLoginChallenge () {
      return { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() }
    },
    async authorizationUrl (challenge, extra = {}) {
      const codeChallenge = await oidc.calculatePKCECodeChallenge(challenge.codeVerifier)
      return call(async config => oidc.buildAuthorizationUrl(config, {
        ...options.authParams,
        ...extra,
        redirect_uri: options.redirectUri,
        response_type: 'code',
        scope: options.scopes,
        state: challenge.state,
        nonce: challenge.nonce,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
      }))
    },
    async exchangeCode (callbackUrl, challenge) {
      const resource = options.authParams.resource
      return call(async config => toTokenResult(await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: challenge.codeVerifier,
        expectedState: challenge.state,
        expectedNonce: challenge.nonce,
        idTokenExpected: true,
      }, resource ? { resource } : undefined)))
    },
    async refresh (refreshToken) {
      const resource = options.authParams.resource
      return call(async config => toTokenResult(await oidc.refreshTokenGrant(config, refreshToken, resource ? { resource } : undefined)))
    },
    async userInfo (accessToken, sub) {
      return call(async config => ({ ...(await oidc.fetchUserInfo(config, accessToken, sub)) }))
    },
    async revoke (token, hint) {
      await call(async config => {
        if (!config.serverMetadata().revocation_endpoint) return
        await oidc.tokenRevocation(config, token, { token_type_hint: hint })
      })
    },
    async endSessionUrl (idTokenHint, postLogoutRedirectUri) {
      return call(async config => {
        if (!config.serverMetadata().end_session_endpoint) return undefined
        return oidc.buildEndSessionUrl(config, {
          post_logout_redirect_uri: postLogoutRedirectUri,
          client_id: options.clientId,
          ...(idTokenHint ? { id_token_hint: idTokenHint } : {}),
        }).href
      })
    },
    async jwksUri () {
      return call(async config => {
        const uri = config.serverMetadata().jwks_uri
        if (!uri) throw new Error('the identity provider publishes no jwks_uri')
        return uri
      })
    },
  }
}
