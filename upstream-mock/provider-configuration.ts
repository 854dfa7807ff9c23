/**
 * oidc-provider configuration of the mock IdP. The non-defaults, and why:
 * - refresh tokens for every client allowed the grant, since oidc-provider
 *   drops `offline_access` from any request without prompt=consent;
 * - rotation on every use (reuse of a used one revokes the grant: built in);
 * - JWT access tokens for each API (resource server), also from refresh
 *   grants that do not repeat `resource`, carrying the user's current roles;
 * - every claim of the granted scopes in the ID token, roles with `openid`;
 * - back-channel logout to loopback receivers (SSRF guard off), quiet pages;
 * - client credentials allowed to the clients registered for it; DPoP and
 *   PAR are on (oidc-provider's defaults), nonces and PAR required on demand;
 * - when acr is on: the acr values of our login pages, and step-up on
 *   `acr_values` (see authentication-context.ts);
 * - disabled users are accounts oidc-provider cannot find: no token for them.
 */
import { randomBytes } from 'node:crypto'
import type { ClientMetadata, Configuration, InteractionPolicy } from 'oidc-provider'
import type { JWK } from 'jose'
import { SUPPORTED_ACR_VALUES } from './authentication-context.js'
import type { MemoryAdapterStore } from './memory-adapter.js'
import { errorPage, loggedOutPage, logoutConfirmPage } from './pages.js'
import type { ResourceServerTable } from './resource-servers.js'
import { TOKEN_EXCHANGE_GRANT } from './token-exchange.js'
import type { UserDirectory } from './users.js'

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt'

export interface IdpClient {
  clientId: string
  /** Required unless the client authenticates with private_key_jwt. */
  clientSecret?: string
  redirectUris: string[]
  postLogoutRedirectUris?: string[]
  backchannelLogoutUri?: string
  /**
   * Default client_secret_basic. oidc-provider accepts a secret in the form as well
   * as in the header for either secret method; private_key_jwt needs `jwks`.
   */
  tokenEndpointAuthMethod?: ClientAuthMethod
  /** The public keys a private_key_jwt client signs its assertions with. */
  jwks?: { keys: JWK[] }
  /** Allows the client_credentials grant. */
  clientCredentials?: boolean
  /** Allows token exchange (RFC 8693, see token-exchange.ts). */
  tokenExchange?: boolean
  /** Refuses its authorization requests unless they were pushed first (PAR, RFC 9126). */
  requirePar?: boolean
  /** Refuses to issue it any access token without a DPoP proof. */
  dpopBoundAccessTokens?: boolean
  /** `auth_time` in every ID token, not only after `max_age` or `prompt=login`. */
  requireAuthTime?: boolean
}

export interface ProviderSettings {
  clients: IdpClient[]
  resources: ResourceServerTable
  accessTokenTtl: number
  refreshTokenTtl: number
  idTokenTtl: number
  /** Read on every issuance, so it can change at run time. */
  clockSkewSeconds: () => number
  users: UserDirectory
  store: MemoryAdapterStore
  jwks: { keys: Array<Record<string, unknown>> }
  /** Stands in for the global fetch in every outgoing request oidc-provider makes. */
  fetch: (url: string | URL, init: RequestInit) => Promise<Response>
  invalidTarget: (description: string) => Error
  /** Set when logins carry an acr: oidc-provider's prompts with the step-up check. */
  acrPolicy?: InteractionPolicy
  /** Set to make every DPoP proof at the IdP carry a nonce it issued. */
  dpopNonceSecret?: Buffer
}

function clientMetadata (client: IdpClient): ClientMetadata {
  return {
    client_id: client.clientId,
    ...(client.clientSecret !== undefined ? { client_secret: client.clientSecret } : {}),
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris ?? [],
    grant_types: [
      'authorization_code',
      'refresh_token',
      ...(client.clientCredentials ? ['client_credentials'] : []),
      ...(client.tokenExchange ? [TOKEN_EXCHANGE_GRANT] : []),
    ],
    response_types: ['code'],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod ?? 'client_secret_basic',
    ...(client.jwks ? { jwks: { keys: client.jwks.keys.map(key => ({ ...key })) } } : {}),
    ...(client.backchannelLogoutUri
      ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true }
      : {}),
    ...(client.requirePar ? { require_pushed_authorization_requests: true } : {}),
    ...(client.dpopBoundAccessTokens ? { dpop_bound_access_tokens: true } : {}),
    ...(client.requireAuthTime ? { require_auth_time: true } : {}),
  }
}

const now = (): number => Math.floor(Date.now() / 1000)

export function providerConfiguration (settings: ProviderSettings): Configuration {
  const { resources, accessTokenTtl, users, clockSkewSeconds } = settings
  const tokenTtl = (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
    token.resourceServer?.accessTokenTTL ?? accessTokenTtl
  return {
    ...(settings.acrPolicy ? { acrValues: [...SUPPORTED_ACR_VALUES], interactions: { policy: settings.acrPolicy } } : {}),
    adapter: settings.store.adapterFor,
    clients: settings.clients.map(clientMetadata),
    jwks: settings.jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // The gateway asks for `openid profile email offline_access`: roles must come with `openid`.
    // `iat` is listed only so a clock-skewed value from findAccount reaches the ID token.
    // With acr on, every ID token says how and when the user logged in (oidc-provider's
    // standalone acr, amr and auth_time claims come otherwise only when asked for).
    claims: {
      ...(settings.acrPolicy ? { amr: null } : {}),
      openid: ['sub', 'roles', 'iat', ...(settings.acrPolicy ? ['acr', 'amr', 'auth_time'] : [])],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access'],
    responseTypes: ['code'],
    conformIdTokenClaims: false,
    findAccount (_ctx, sub) {
      const user = users.findActive(sub)
      if (!user) return undefined
      return {
        accountId: user.username,
        claims (use) {
          const skew = clockSkewSeconds()
          return {
            sub: user.username,
            name: user.name,
            preferred_username: user.username,
            email: user.email,
            email_verified: true,
            roles: [...user.roles],
            ...(use === 'id_token' && skew !== 0 ? { iat: now() + skew } : {}),
          }
        },
      }
    },
    extraTokenClaims (_ctx, token) {
      const user = token.accountId ? users.find(token.accountId) : undefined
      return user ? { roles: [...user.roles] } : undefined
    },
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Refresh tokens outlive the IdP's browser session, as offline_access ones would.
    expiresWithSession: () => false,
    rotateRefreshToken: () => true,
    pkce: { required: () => true },
    clientBasedCORS: () => false,
    formats: {
      customizers: {
        jwt (_ctx, _token, jwt) {
          const skew = clockSkewSeconds()
          if (skew === 0) return
          for (const claim of ['iat', 'exp', 'nbf']) {
            const value = jwt.payload[claim]
            if (typeof value === 'number') jwt.payload[claim] = value + skew
          }
        },
      },
    },
    // oidc-provider passes an undici dispatcher that refuses loopback and private addresses.
    async fetch (url, { dispatcher: _ssrfGuard, ...init }) {
      return settings.fetch(url, init)
    },
    renderError (ctx, out) {
      ctx.type = 'html'
      ctx.body = errorPage(out)
    },
    ttl: {
      AccessToken: tokenTtl,
      ClientCredentials: tokenTtl,
      AuthorizationCode: 60,
      IdToken: () => Math.max(1, settings.idTokenTtl + clockSkewSeconds()),
      RefreshToken: settings.refreshTokenTtl,
      Grant: Math.max(settings.refreshTokenTtl, 30 * 86_400),
      Session: 86_400,
      Interaction: 600,
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      dPoP: settings.dpopNonceSecret
        ? { enabled: true, nonceSecret: settings.dpopNonceSecret, requireNonce: () => true }
        : { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource (ctx, form) { ctx.body = logoutConfirmPage(form) },
        postLogoutSuccessSource (ctx) { ctx.body = loggedOutPage() },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource (_ctx, _client, oneOf) {
          if (!oneOf) return resources.defaultAudience
          return resources.pick(oneOf) ?? oneOf
        },
        // Refresh requests rarely repeat `resource`: keep issuing for the one(s) granted at login.
        useGrantedResource: () => true,
        getResourceServerInfo (_ctx, indicator) {
          const info = resources.info(indicator)
          if (!info) throw settings.invalidTarget(`unknown resource ${indicator}`)
          return info
        },
      },
    },
  }
}
