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
import { importJWK } from 'jose'
import { IdpUnavailable } from '../errors.js'
import type { ClientPrivateKey } from './client-key.js'
import { registeredOAuthError, type OAuthErrorCode } from '../oauth-error-codes.js'

/** How the gateway authenticates itself at the IdP's endpoints. */
export type ClientAuthentication =
  | { method: 'client_secret_basic' | 'client_secret_post', secret: string }
  | { method: 'private_key_jwt', key: ClientPrivateKey }

export interface OidcClientOptions {
  issuer: string
  clientId: string
  clientAuth: ClientAuthentication
  /** Push authorization requests first (RFC 9126). */
  par: boolean
  redirectUri: string
  scopes: string
  authParams: Record<string, string>
  /** APIs asked for at every login as RFC 8707 `resource` parameters, besides any in `authParams`. */
  resources?: readonly string[]
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

/** What a token request for one API names (RFC 8707 `resource`, `scope`), and the key to bind its token to. */
export interface TokenRequest {
  resource?: string
  /** Space-separated. */
  scope?: string
  /** Proves possession of this key at the token endpoint (RFC 9449); the token comes back bound to it. */
  dpop?: CryptoKeyPair
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
  /** With `dpop`, the tokens are bound to that key. */
  exchangeCode (callbackUrl: URL, challenge: LoginChallenge, dpop?: CryptoKeyPair): Promise<TokenResult>
  /** Without a `resource`, for the audience of `OIDC_AUTH_PARAMS`'s resource (if any), as at the code exchange. */
  refresh (refreshToken: string, request?: TokenRequest): Promise<TokenResult>
  /** RFC 8693: the user's access token traded for one for `request.resource`. */
  exchangeToken (subjectToken: string, request: TokenRequest & { resource: string }): Promise<TokenResult>
  /** The gateway's own token (client credentials grant). */
  clientCredentials (request: TokenRequest): Promise<TokenResult>
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
  // A refused client authentication may come as a challenge (`WWW-Authenticate: Basic error="invalid_client"`).
  if (error instanceof oidc.WWWAuthenticateChallengeError && error.status < 500) {
    const refusal = error.cause.map((challenge) => challenge.parameters.error).find((code) => code !== undefined && REJECTIONS.has(code))
    if (refusal !== undefined) return new OidcRejectedError(refusal, { cause: error })
  }
  if (error instanceof oidc.ClientError && error.code !== undefined && LOCAL_CHECKS.has(error.code)) {
    return new OidcResponseInvalidError(error.code, { cause: error })
  }
  return new IdpUnavailable({ cause: error })
}

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

/** openid-client's client authentication for the configured method; a private key is imported once. */
async function clientAuthFor (auth: ClientAuthentication): Promise<oidc.ClientAuth> {
  if (auth.method !== 'private_key_jwt') {
    return auth.method === 'client_secret_post' ? oidc.ClientSecretPost(auth.secret) : oidc.ClientSecretBasic(auth.secret)
  }
  const key = await importJWK({ ...auth.key.jwk, alg: auth.key.alg }, auth.key.alg) as CryptoKey
  return oidc.PrivateKeyJwt({ key, ...(auth.key.kid !== undefined ? { kid: auth.key.kid } : {}) })
}

export function createOidcClient (options: OidcClientOptions): OidcClient {
  let discovered: Promise<oidc.Configuration> | undefined
  // Each key's handle remembers the IdP's DPoP nonce, so a session's next proof carries it at once.
  const dpopHandles = new WeakMap<CryptoKeyPair, oidc.DPoPHandle>()
  const clientAuth = clientAuthFor(options.clientAuth)
  // Settled here too, so a key that cannot be imported is reported by the calls, not as an unhandled rejection.
  clientAuth.catch(() => {})

  function configuration (): Promise<oidc.Configuration> {
    // Memoise success only: an IdP that was down at start is retried on the next use.
    discovered ??= clientAuth.then(auth => oidc.discovery(
      new URL(options.issuer),
      options.clientId,
      { [oidc.clockTolerance]: options.clockToleranceSeconds },
      auth,
      {
        timeout: options.httpTimeoutSeconds,
        ...(options.allowInsecureHttp ? { execute: [oidc.allowInsecureRequests] } : {}),
      }
    )).then(config => {
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

  function dpopOption (config: oidc.Configuration, keyPair: CryptoKeyPair | undefined): oidc.DPoPOptions | undefined {
    if (keyPair === undefined) return undefined
    let handle = dpopHandles.get(keyPair)
    if (handle === undefined) dpopHandles.set(keyPair, handle = oidc.getDPoPHandle(config, keyPair))
    return { DPoP: handle }
  }

  /** `resource` and `scope` of a token request, the parameters that name them. */
  function targetParameters (request: TokenRequest): Record<string, string> {
    return {
      ...(request.resource !== undefined ? { resource: request.resource } : {}),
      ...(request.scope !== undefined ? { scope: request.scope } : {}),
    }
  }

  /** The authorization request's parameters: every API as its own `resource` (RFC 8707 allows several). */
  function authorizationParameters (challenge: LoginChallenge, codeChallenge: string, extra: Record<string, string>): URLSearchParams {
    const parameters = new URLSearchParams({
      ...options.authParams,
      ...extra,
      redirect_uri: options.redirectUri,
      response_type: 'code',
      scope: options.scopes,
      state: challenge.state,
      nonce: challenge.nonce,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
    })
    const named = new Set(parameters.getAll('resource'))
    for (const resource of options.resources ?? []) {
      if (!named.has(resource)) parameters.append('resource', resource)
      named.add(resource)
    }
    return parameters
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
      const parameters = authorizationParameters(challenge, codeChallenge, extra)
      return call(async config => options.par
        ? oidc.buildAuthorizationUrlWithPAR(config, parameters)
        : oidc.buildAuthorizationUrl(config, parameters))
    },
    async exchangeCode (callbackUrl, challenge, dpop) {
      const resource = options.authParams.resource
      return call(async config => toTokenResult(await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: challenge.codeVerifier,
        expectedState: challenge.state,
        expectedNonce: challenge.nonce,
        idTokenExpected: true,
      }, resource ? { resource } : undefined, dpopOption(config, dpop))))
    },
    async refresh (refreshToken, request = {}) {
      const resource = request.resource ?? options.authParams.resource
      const parameters = targetParameters({ ...request, ...(resource !== undefined ? { resource } : {}) })
      return call(async config => toTokenResult(await oidc.refreshTokenGrant(config, refreshToken, parameters, dpopOption(config, request.dpop))))
    },
    async exchangeToken (subjectToken, request) {
      return call(async config => toTokenResult(await oidc.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, {
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        ...targetParameters(request),
      }, dpopOption(config, request.dpop))))
    },
    async clientCredentials (request) {
      return call(async config => toTokenResult(await oidc.clientCredentialsGrant(config, targetParameters(request), dpopOption(config, request.dpop))))
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
