/**
 * The token refresher, wired to the session layer, the identity provider,
 * metrics and the audit trail; `app.tokens` keeps every session's access
 * token fresh with one refresh per session across instances.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { createTokenRefresher, type TokenRefresher } from './token-refresher.js'
import { revokeRefreshToken } from './refresh-token-revocation.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenRefresher
  }
}

export interface TokenPluginOptions {
  config: GatewayConfig
  /** Lease of the cross-instance refresh lock; tests shorten it to prove renewal. */
  refreshLockLeaseMs?: number
}

async function tokenPlugin (app: FastifyInstance, options: TokenPluginOptions) {
  const { config } = options
  const { sessions, sessionChanges, leases, revocation, oidc, metrics, audit } = app
  const tokens = createTokenRefresher({
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
    },
  })
  // Tracing (when on): a `token.refresh` span around each wait for fresh tokens.
  app.decorate('tokens', app.tracing?.traceTokenRefresh(tokens) ?? tokens)
}

export default fp(tokenPlugin, { name: 'bff-tokens', dependencies: ['bff-session-store', 'bff-oidc', 'bff-observability'] })
