/**
 * The token lifecycle, wired to the session layer, the identity provider,
 * metrics and the audit trail:
 *  - `app.tokens` keeps every session's own access token fresh, with one
 *    refresh per session across instances;
 *  - `app.userTokens` gives a route the user's token it sends (the session's
 *    own, or one narrowed to its API), under the same one lock;
 *  - `app.clientTokens` holds the gateway's own client-credentials tokens;
 *  - `app.loginTokens` says what a login asks for and binds.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { createClientTokens, type ClientTokens } from './client-tokens.js'
import { createLoginTokens, type LoginTokenNeeds, type LoginTokens } from './login-tokens.js'
import { createTokenRefresher, type TokenRefresher } from './token-refresher.js'
import { createUserTokens, type UserTokens } from './user-tokens.js'
import { revokeRefreshToken } from '../session/refresh-token-revocation.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenRefresher
    userTokens: UserTokens
    clientTokens: ClientTokens
    loginTokens: LoginTokens
  }
}

export interface TokenPluginOptions {
  config: GatewayConfig
  /** What the route policy needs of every login (audiences, DPoP), worked out by the app from the policy. */
  loginNeeds: LoginTokenNeeds
  /** Lease of the cross-instance refresh lock; tests shorten it to prove renewal. */
  refreshLockLeaseMs?: number
}

async function tokenPlugin (app: FastifyInstance, options: TokenPluginOptions) {
  const { config } = options
  const { sessions, sessionChanges, leases, revocation, oidc, metrics, audit } = app
  const untraced = createTokenRefresher({
    sessions,
    leases,
    revocation,
    oidc,
    waitForChange: (handle, ms) => sessionChanges.wait(handle, ms),
    skewSeconds: config.tokenRefreshSkewSeconds,
    rolesClaim: config.rolesClaim,
    revokeRefreshToken: (secrets) => revokeRefreshToken(oidc, secrets.refreshToken, app.log),
    ...(options.refreshLockLeaseMs ? { lockLeaseMs: options.refreshLockLeaseMs } : {}),
    observer: {
      attempt: () => metrics.refreshAttempts.inc(),
      success: (ms) => {
        metrics.refreshSuccesses.inc()
        metrics.refreshDuration.observe(ms / 1000)
      },
      failure: (reason) => metrics.refreshFailures.inc({ reason }),
      lockWait: () => metrics.refreshLockWaits.inc(),
      grantRejected: (session, oauthError) => audit('refresh_failed', { reason: oauthError, sub: session.meta.sub, session: session.handle }),
      targetRefused: (session, oauthError, resource) => audit('refresh_failed', {
        reason: oauthError, audience: resource, sub: session.meta.sub, session: session.handle,
      }),
    },
  })
  // Tracing (when on): a `token.refresh` span around each wait for fresh tokens.
  const refresher = app.tracing?.traceTokenRefresh(untraced) ?? untraced
  app.decorate('tokens', refresher)

  app.decorate('userTokens', createUserTokens({
    refresher,
    sessions,
    revocation,
    oidc,
    skewSeconds: config.tokenRefreshSkewSeconds,
    observer: {
      fetch: (audience, grant) => metrics.upstreamTokenFetches.inc({ audience, type: 'user', grant }),
      failure: (audience, grant, reason, session, oauthError) => {
        metrics.upstreamTokenFailures.inc({ audience, type: 'user', reason })
        if (reason !== 'idp_unavailable') {
          audit('upstream_token_failed', {
            reason: reason === 'not_granted' ? 'not_granted' : oauthError ?? 'other', audience, grant, sub: session.meta.sub, session: session.handle,
          })
        }
      },
    },
  }))

  app.decorate('clientTokens', createClientTokens({
    oidc,
    skewSeconds: config.tokenRefreshSkewSeconds,
    observer: {
      fetch: (audience) => metrics.upstreamTokenFetches.inc({ audience: audience ?? 'default', type: 'client', grant: 'client_credentials' }),
      failure: (audience, reason, oauthError) => {
        metrics.upstreamTokenFailures.inc({ audience: audience ?? 'default', type: 'client', reason })
        if (reason === 'rejected') audit('upstream_token_failed', { reason: oauthError ?? 'other', audience: audience ?? 'default', grant: 'client_credentials' })
      },
    },
  }))

  app.decorate('loginTokens', createLoginTokens(options.loginNeeds))
}

export default fp(tokenPlugin, { name: 'bff-tokens', dependencies: ['bff-session-store', 'bff-oidc', 'bff-observability'] })
