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
import { AccessLogController, lazyChildLoggerFactory, loggerOptions, type LogStream } from './logging.js'
import { installErrorHandlers } from './http-errors.js'
import { createSessionStore } from './session/create-store.js'
import { waitForRedis, watchRedisConnection } from './session/redis-client.js'
import { createSessionCache } from './session/session-cache.js'
import { createChangeWaiters } from './session/change-waiters.js'
import { applyInvalidation, parseInvalidation, subscribeInvalidations, type Invalidation } from './session/invalidation.js'
import type { SessionStore } from './session/store.js'
import { createSessionCrypto } from './session/session-crypto.js'
import { createSessionManager, type SessionSecrets } from './session/sessions.js'
import sessionPlugin from './session/session-plugin.js'
import { createOidcClient, type OidcClient } from './auth/oidc-client.js'
import { createTokenRefresher } from './auth/token-refresher.js'
import authRoutes from './auth/auth-routes.js'
import deviceRoutes from './auth/device-routes.js'
import backchannelLogoutRoute from './auth/backchannel-logout-route.js'
import { createLogoutTokenVerifier } from './auth/logout-token.js'
import csrfPlugin from './csrf.js'
import canonicalPath from './canonical-path.js'
import securityHeaders from './security-headers.js'
import corsPlugin from './cors.js'
import loginRateLimit from './login-rate-limit.js'
import { httpServerOptions, onClientError, onRouterError, refuseAmbiguousHost } from './protocol-errors.js'
import { MAX_PATH_LENGTH } from './proxy/normalise-path.js'
import proxyPlugin from './proxy/proxy-plugin.js'
import { createOpenSockets } from './proxy/open-sockets.js'
import adminRoutes from './admin/admin-routes.js'

export interface GatewayDeps {
  /** A store to use instead of the configured one (tests run the same app on both). */
  store?: SessionStore
  /** Lease of the cross-instance refresh lock; tests shorten it to prove renewal. */
  refreshLockLeaseMs?: number
  /** Where both listeners' log lines go instead of stdout (tests read audit lines there). */
  logStream?: LogStream
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
/** How often open WebSockets' sessions are re-read even without an invalidation message. */
const WEBSOCKET_SWEEP_MS = 10_000
/** A safety net only; invalidation messages are what keep cached sessions correct. */
const SESSION_CACHE_TTL_MS = 60_000

/**
 * Graceful close: requests in flight finish, then their keep-alive connections are closed
 * (answers sent while closing say `Connection: close`, and connections that turn idle are
 * closed as they do), so `close()` resolves as soon as the last request is done.
 */
function drainOnClose (server: FastifyInstance): void {
  let draining: NodeJS.Timeout | undefined
  server.addHook('preClose', async () => {
    draining = setInterval(() => server.server.closeIdleConnections(), 50)
    draining.unref()
  })
  server.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })
  server.addHook('onClose', async () => clearInterval(draining))
}

/** Builds (but does not start) a gateway. */
export async function buildApp (config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const metrics = createMetrics()
  // The cache needs the invalidation channel, which needs Redis: none with the memory store.
  const cache = !deps.store && config.sessionStore === 'redis' && config.sessionCacheSize > 0
    ? createSessionCache({ maxEntries: config.sessionCacheSize, ttlMs: SESSION_CACHE_TTL_MS })
    : undefined
  // Who else hears invalidation messages, after the cache has applied them (open WebSockets and
  // instances waiting for another's token refresh, below).
  const invalidationListeners: Array<(invalidation: Invalidation) => void> = []
  const announce = (invalidation: Invalidation) => { for (const listener of invalidationListeners) listener(invalidation) }
  const created = deps.store
    ? { store: deps.store }
    : createSessionStore(config, {
      onError: () => metrics.storeErrors.inc(),
      ...(cache
        ? {
            onAnnounce: (message: string) => {
              const invalidation = parseInvalidation(message)
              applyInvalidation(cache, invalidation)
              announce(invalidation)
            },
          }
        : {}),
    })
  const { store } = created

  const app = Fastify({
    logger: loggerOptions(config.logLevel, 'bff-gateway', deps.logStream),
    childLoggerFactory: lazyChildLoggerFactory,
    // One access line per request instead of Fastify's two (logging.ts).
    logController: new AccessLogController(),
    // A hop count means: trust that many proxies nearest to us (what proxy-addr does for numbers).
    trustProxy: typeof config.trustProxy === 'number'
      ? ((hops: number) => (_address: string, index: number) => index < hops)(config.trustProxy)
      : config.trustProxy,
    // A client-supplied request id would let a caller forge log correlation.
    requestIdHeader: false,
    // While closing, a request that reached us on an open connection is served (with `Connection: close`),
    // not refused: Fastify's 503 would fail it, out of contract JSON, though no other instance saw it.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    bodyLimit: 1024 * 1024,
    // The canonical-path check owns the length limit (414); the router's must not be tighter.
    routerOptions: { maxParamLength: MAX_PATH_LENGTH },
    // What the HTTP parser and the router refuse still gets the contract's JSON errors.
    clientErrorHandler: onClientError,
    frameworkErrors: onRouterError,
    http: httpServerOptions,
  })
  const admin = Fastify({
    logger: loggerOptions(config.logLevel, 'bff-admin', deps.logStream),
    childLoggerFactory: lazyChildLoggerFactory,
    logController: new AccessLogController(),
    requestIdHeader: false,
    forceCloseConnections: 'idle',
    http: httpServerOptions,
  })
  // Before any plugin: child scopes take the error handler their parent has when they are registered.
  installErrorHandlers(app)
  installErrorHandlers(admin)
  admin.addHook('onRequest', refuseAmbiguousHost)
  drainOnClose(app)
  drainOnClose(admin)
  const audit = createAudit(app.log, metrics)

  metrics.trackSessions(() => store.countSessions())
  if (cache) metrics.trackSessionCache(cache)
  watchRedisConnection(created.redis, app.log)
  if (store.kind === 'memory') {
    app.log.warn('SESSION_STORE=memory: sessions live in this process only; use Redis for more than one instance or a restart-proof demo')
  }

  const oidc = createOidcClient({ ...config.oidc, redirectUri: config.redirectUri })

  async function revokeRefreshToken (secrets: SessionSecrets, log: FastifyInstance['log']): Promise<void> {
    const token = secrets.refreshToken
    if (!token) return
    // Bounded: an unreachable IdP must not hold a logout hostage; the session is already gone here.
    const revocation = oidc.revoke(token, 'refresh_token').catch((error: unknown) => {
      log.warn({ err: error }, 'refresh token revocation at the identity provider failed')
    })
    await Promise.race([revocation, new Promise(resolve => setTimeout(resolve, REVOCATION_WAIT_MS).unref())])
  }

  const invalidations = cache && created.redis
    ? subscribeInvalidations(created.redis, cache,
      (error) => app.log.warn({ err: error }, 'session invalidation channel failed; cache distrusted'),
      announce)
    : undefined

  const sessions = createSessionManager({
    store,
    ...(cache ? { cache } : {}),
    crypto: createSessionCrypto(config.sessionSecrets),
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    absoluteTimeoutSeconds: config.absoluteTimeoutSeconds,
    // Sessions revoked from elsewhere (operator, back-channel, another device) keep their tokens
    // sealed under the browser's key; the browser's next visit lets us revoke them at the IdP.
    onRevokedSessionSeen: async (secrets, meta, reason) => {
      await revokeRefreshToken(secrets, app.log)
      audit('session_revoked', { reason, sub: meta.sub, stage: 'refresh_token_revoked' })
    },
  })

  const openSockets = createOpenSockets({
    reload: (session) => sessions.reload(session),
    sweepMs: WEBSOCKET_SWEEP_MS,
    onEnded: (session) => app.log.info({ session: session.handle, sub: session.meta.sub }, 'WebSocket closed: its session is over'),
    onCheckFailed: (error) => app.log.warn({ err: error }, 'could not re-check the session of an open WebSocket; it stays open until the next check'),
  })
  invalidationListeners.push((invalidation) => openSockets.announce(invalidation))

  // Instances waiting for another's token refresh are woken by its write, not only by their poll.
  const changeWaiters = createChangeWaiters()
  invalidationListeners.push((invalidation) => changeWaiters.announce(invalidation))

  const refresher = createTokenRefresher({
    sessions,
    oidc,
    waitForChange: (handle, ms) => changeWaiters.wait(handle, ms),
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
        const revoked = await store.revokeByUser(session.meta.sub, 'theft_suspected')
        await store.bumpUserEpoch(session.meta.sub, config.absoluteTimeoutSeconds * 1000)
        audit('theft_suspected', { reason: 'refresh_token_rejected', sub: session.meta.sub, revoked: revoked.length })
      },
    },
  })

  // First: every response carries the security headers, and every hook after the cookie
  // parser (which later onSend hooks rely on) sees exactly one Host and one canonical path.
  await app.register(securityHeaders, { publicUrl: config.publicUrl })
  await app.register(cookie)
  app.addHook('onRequest', refuseAmbiguousHost)
  await app.register(canonicalPath)
  await app.register(sessionPlugin, {
    sessions,
    cookieName: config.cookie.name,
    secure: config.cookie.secure,
    sameSite: config.cookie.sameSite,
    binding: { mode: config.sessionBinding, rules: config.sessionBindingNetwork },
    onBindingMismatch: (session, mismatch, revoked) => audit('binding_mismatch', {
      reason: mismatch, sub: session.meta.sub, session: session.handle, action: revoked ? 'revoked' : 'logged',
    }),
  })
  await app.register(csrfPlugin, {
    allowedOrigins: [config.publicOrigin, ...config.allowedOrigins],
    onRefused: (request, reason) => audit('csrf_refused', { reason, ip: request.ip }),
  })
  // Without extra origins there is nobody to give CORS headers to: the SPA is same-origin, and
  // the browser's same-origin policy stays whole. Nothing per request then (not even `Vary`).
  if (config.allowedOrigins.length > 0) await app.register(corsPlugin, { allowedOrigins: config.allowedOrigins })
  await app.register(loginRateLimit, {
    max: config.loginRateLimit,
    windowMs: 60_000,
    routes: ['/bff/login', '/bff/callback'],
    ...(created.redis ? { redis: created.redis } : {}),
  })
  await app.register(authRoutes, {
    oidc,
    publicUrl: config.publicUrl,
    rolesClaim: config.rolesClaim,
    sessionCookieName: config.cookie.name,
    loginCookieName: `${config.cookie.name}-login`,
    secureCookies: config.cookie.secure,
    audit,
    revokeRefreshToken,
  })
  await app.register(deviceRoutes, { audit })
  await app.register(backchannelLogoutRoute, {
    audit,
    absoluteTimeoutSeconds: config.absoluteTimeoutSeconds,
    verify: createLogoutTokenVerifier({
      issuer: config.oidc.issuer,
      clientId: config.oidc.clientId,
      jwksUri: () => oidc.jwksUri(),
      clockToleranceSeconds: config.oidc.clockToleranceSeconds,
      claimJti: (key, ttlMs) => store.claimOnce(key, ttlMs),
    }),
  })
  await app.register(proxyPlugin, { policy: config.routes, refresher, publicUrl: config.publicUrl, bodyLimit: config.proxyBodyLimit, openSockets })
  // Probes hit this every few seconds; log them only when something is wrong.
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))
  if (config.staticDir) {
    const root = config.staticDir
    await app.register(async (spa) => {
      // The SPA's files are public and read-only (GET/HEAD): a link from another site, or the
      // redirect to returnTo after a login at an IdP on another site, must open them.
      spa.addHook('onRoute', (route) => { route.config = { ...route.config, crossSiteAllowed: true } })
      await spa.register(fastifyStatic, { root, wildcard: true, index: 'index.html', cacheControl: false })
    })
  }
  // One hook for every answered request, and for the upstream's latency of the forwarded ones.
  app.addHook('onResponse', (request, reply, done) => {
    const status = String(reply.statusCode)
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status })
    const forwarded = request.bffForward
    if (forwarded && forwarded.upstreamSeconds >= 0) metrics.upstreamDuration.observe({ upstream: forwarded.upstream, status }, forwarded.upstreamSeconds)
    done()
  })

  await admin.register(adminRoutes, {
    adminToken: config.adminToken,
    metrics,
    store,
    oidc,
    audit: createAudit(admin.log, metrics),
    absoluteTimeoutSeconds: config.absoluteTimeoutSeconds,
  })

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
      openSockets.close()
      await app.close()
      await admin.close()
      await invalidations?.close()
      await store.close()
    },
  }
}
