/**
 * oidc-provider configuration of the mock IdP. The non-defaults, and why:
 * - refresh tokens for every client allowed the grant, since oidc-provider
 *   drops `offline_access` from any request without prompt=consent;
 * - rotation on every use (reuse of a used one revokes the grant: built in);
 * - JWT access tokens for the one API, also from refresh grants that do not
 *   repeat `resource`, carrying the user's current roles;
 * - every claim of the granted scopes in the ID token, roles with `openid`;
 * - back-channel logout to loopback receivers (SSRF guard off), quiet pages.
 */
import { randomBytes } from 'node:crypto'
import type { Configuration } from 'oidc-provider'
import type { MemoryAdapterStore } from './memory-adapter.js'
import { errorPage, loggedOutPage, logoutConfirmPage } from './pages.js'
import type { UserDirectory } from './users.js'

export interface IdpClient {
  clientId: string
  clientSecret: string
  redirectUris: string[]
  postLogoutRedirectUris?: string[]
  backchannelLogoutUri?: string
}

export interface ProviderSettings {
  clients: IdpClient[]
  apiAudience: string
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
}

function clientMetadata (client: IdpClient) {
  return {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris ?? [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // oidc-provider accepts client_secret_post too for a client registered with basic.
    token_endpoint_auth_method: 'client_secret_basic',
    ...(client.backchannelLogoutUri
      ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true }
      : {}),
  }
}

const now = (): number => Math.floor(Date.now() / 1000)

export function providerConfiguration (settings: ProviderSettings): Configuration {
  const { apiAudience, accessTokenTtl, users, clockSkewSeconds } = settings
  return {
    adapter: settings.store.adapterFor,
    clients: settings.clients.map(clientMetadata),
    jwks: settings.jwks,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // The gateway asks for `openid profile email offline_access`: roles must come with `openid`.
    // `iat` is listed only so a clock-skewed value from findAccount reaches the ID token.
    claims: {
      openid: ['sub', 'roles', 'iat'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access'],
    responseTypes: ['code'],
    conformIdTokenClaims: false,
    findAccount (_ctx, sub) {
      const user = users.find(sub)
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
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
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
      rpInitiatedLogout: {
        enabled: true,
        logoutSource (ctx, form) { ctx.body = logoutConfirmPage(form) },
        postLogoutSuccessSource (ctx) { ctx.body = loggedOutPage() },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource (_ctx, _client, oneOf) {
          if (!oneOf) return apiAudience
          return oneOf.includes(apiAudience) ? apiAudience : oneOf
        },
        // Refresh requests rarely repeat `resource`: keep issuing for the one granted at login.
        useGrantedResource: () => true,
        getResourceServerInfo (_ctx, indicator) {
          if (indicator !== apiAudience) throw settings.invalidTarget(`unknown resource ${indicator}`)
          return { audience: apiAudience, accessTokenFormat: 'jwt', accessTokenTTL: accessTokenTtl, scope: 'api' }
        },
      },
    },
  }
}
