/**
 * Builds the gateway from its configuration: the one file that knows plugin
 * order. Data flows one way: config → store → sessions → auth → CSRF → policy → proxy.
 * Never reads the environment; `server.ts` does that.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import cookie from '@fastify/cookie'
import fastifyStatic from '@fastify/static'
import type { GatewayConfig } from './config.js'
import { createMetrics, type GatewayMetrics } from './metrics.js'
import { createAudit } from './audit.js'
import { loggerOptions } from './logging.js'
import { installErrorHandlers } from './http-errors.js'
import { createSessionStore } from './session/create-store.js'
import { waitForRedis } from './session/redis-client.js'
import type { SessionStore } from './session/store.js'
import { createSessionCrypto } from './session/session-crypto.js'
import { createSessionManager, type ActiveSession } from './session/sessions.js'
import sessionPlugin from './session/session-plugin.js'
import { createOidcClient, type OidcClient } from './auth/oidc-client.js'
import { createTokenRefresher } from './auth/token-refresher.js'
import authRoutes from './auth/auth-routes.js'
import csrfPlugin from './csrf.js'
import proxyPlugin from './proxy/proxy-plugin.js'
import adminRoutes from './admin/admin-routes.js'

export interface GatewayDeps {
  /** A store to use instead of the configured one (tests run the same app on both). */
  store?: SessionStore
  /** Lease of the cross-instance refresh lock; tests shorten it to prove renewal. */
  refreshLockLeaseMs?: number
}

export interface Gateway {
  /** The public listener: browsers only. */
  app: FastifyInstance
  /** The operator listener: admin API, metrics, readiness. */
  admin: FastifyInstance
  store: SessionStore
  oidc: OidcClient
  metrics: GatewayMetrics
  /** Starts both listeners; resolves with their addresses. */
  listen (): Promise<{ public: string, admin: string }>
  close (): Promise<void>
}

const REVOCATION_WAIT_MS = 2000

/** Builds (but does not start) a gateway. */
export async function buildApp (config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const created = deps.store ? { store: deps.store } : createSessionStore(config)
  const { store } = created
  const metrics = createMetrics()

  const app = Fastify({
    logger: loggerOptions(config.logLevel, 'bff-gateway'),
    // A hop count means: trust that many proxies nearest to us (what proxy-addr does for numbers).
    trustProxy: typeof config.trustProxy === 'number'
      ? ((hops: number) => (_address: string, index: number) => index < hops)(config.trustProxy)
      : config.trustProxy,
    // A client-supplied request id would let a caller forge log correlation.
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 200 },
  })
  const admin = Fastify({
    logger: loggerOptions(config.logLevel, 'bff-admin'),
    requestIdHeader: false,
    forceCloseConnections: 'idle',
  })
  // Before any plugin: child scopes take the error handler their parent has when they are registered.
  installErrorHandlers(app)
  installErrorHandlers(admin)
  const audit = createAudit(app.log, metrics)

  if (store.kind === 'memory') {
    app.log.warn('SESSION_STORE=memory: sessions live in this process only; use Redis for more than one instance or a restart-proof demo')
  }

  const sessions = createSessionManager({
    store,
    crypto: createSessionCrypto(config.sessionSecrets),
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    absoluteTimeoutSeconds: config.absoluteTimeoutSeconds,
  })
  const oidc = createOidcClient({ ...config.oidc, redirectUri: config.redirectUri })

  async function revokeRefreshToken (session: ActiveSession, log: FastifyInstance['log']): Promise<void> {
    const token = session.secrets.refreshToken
    if (!token) return
    // Bounded: an unreachable IdP must not hold a logout hostage; the session is already gone here.
    const revocation = oidc.revoke(token, 'refresh_token').catch((error: unknown) => {
      log.warn({ err: error }, 'refresh token revocation at the identity provider failed')
    })
    await Promise.race([revocation, new Promise(resolve => setTimeout(resolve, REVOCATION_WAIT_MS).unref())])
  }

  const refresher = createTokenRefresher({
    sessions,
    oidc,
    skewSeconds: config.tokenRefreshSkewSeconds,
    rolesClaim: config.rolesClaim,
    ...(deps.refreshLockLeaseMs ? { lockLeaseMs: deps.refreshLockLeaseMs } : {}),
    observer: {
      attempt: () => metrics.refreshAttempts.inc(),
      success: (ms) => {
        metrics.refreshSuccesses.inc()
        metrics.refreshDuration.observe(ms / 1000)
      },
      failure: (reason) => metrics.refreshFailures.inc({ reason }),
      lockWait: () => metrics.refreshLockWaits.inc(),
      grantRejected: async (session, oauthError) => {
        // We held the newest refresh token and no refresh of ours was in flight, yet the IdP refused it:
        // revoked at the IdP, or used by someone else (theft). Either way the user's sessions are suspect.
        audit('refresh_failed', { reason: oauthError, sub: session.meta.sub, session: session.handle })
        const revoked = await store.destroyByUser(session.meta.sub)
        audit('theft_suspected', { reason: 'refresh_token_rejected', sub: session.meta.sub, revoked: revoked.length })
      },
    },
  })

  await app.register(cookie)
  await app.register(sessionPlugin, {
    sessions,
    cookieName: config.cookie.name,
    secure: config.cookie.secure,
    sameSite: config.cookie.sameSite,
  })
  await app.register(csrfPlugin, {
    allowedOrigins: [config.publicOrigin, ...config.allowedOrigins],
    onRefused: (request, reason) => audit('csrf_refused', { reason, ip: request.ip }),
  })
  await app.register(authRoutes, {
    oidc,
    publicUrl: config.publicUrl,
    rolesClaim: config.rolesClaim,
    loginCookieName: `${config.cookie.name}-login`,
    secureCookies: config.cookie.secure,
    audit,
    revokeRefreshToken,
  })
  await app.register(proxyPlugin, { policy: config.routes, refresher, metrics, publicUrl: config.publicUrl })
  app.get('/healthz', async () => ({ status: 'ok' }))
  if (config.staticDir) {
    await app.register(fastifyStatic, { root: config.staticDir, wildcard: true, index: 'index.html', cacheControl: false })
  }
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) })
  })

  await admin.register(adminRoutes, { adminToken: config.adminToken, metrics, store, oidc })

  return {
    app,
    admin,
    store,
    oidc,
    metrics,
    async listen () {
      if (created.redis) {
        await waitForRedis(created.redis, 5000).catch((error: unknown) => {
          app.log.error({ err: error }, 'Redis is not reachable yet; requests get 503 until it is')
        })
      }
      // Discovery is retried on demand; a down IdP must not stop the gateway from starting.
      oidc.ready().catch((error: unknown) => app.log.error({ err: error }, 'identity provider discovery failed; will retry'))
      const publicAddress = await app.listen({ host: config.host, port: config.port })
      const adminAddress = await admin.listen({ host: config.adminHost, port: config.adminPort })
      return { public: publicAddress, admin: adminAddress }
    },
    async close () {
      await app.close()
      await admin.close()
      await store.close()
    },
  }
}
