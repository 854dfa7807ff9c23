/**
 * The gateway, read top to bottom: its resources, then what a request meets
 * in order (headers, cookie, canonical path, session, CSRF, CORS, rate limit,
 * the BFF endpoints, the proxy, the SPA), then the operator listener. Each
 * line is a plugin that creates, decorates and closes what it owns; this
 * file only knows the order. Never reads the environment; `server.ts` does.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import cookie from '@fastify/cookie'
import type { GatewayConfig } from './config.js'
import type { RoutePolicy } from './proxy/route-policy.js'
import { checkPolicyAgainstConfig, loginTokenNeeds } from './proxy/token-policy.js'
import type { ReloadOutcome, ReloadTrigger } from './proxy/route-policy-reload.js'
import type { SessionStore } from './session/store.js'
import { adminServerOptions, publicServerOptions } from './edge/server-options.js'
import { installErrorHandlers } from './edge/http-errors.js'
import { refuseAmbiguousHost } from './edge/protocol-errors.js'
import type { LogStream } from './observability/logging.js'
import gracefulClose from './edge/graceful-close.js'
import loadShedding from './edge/load-shedding.js'
import requestScope from './observability/request-scope.js'
import observability from './observability/observability-plugin.js'
import oidcPlugin from './auth/oidc-plugin.js'
import sessionStore from './session/session-store-plugin.js'
import tokenPlugin from './auth/token-plugin.js'
import routePolicy from './proxy/route-policy-plugin.js'
import securityHeaders from './edge/security-headers.js'
import canonicalPath from './proxy/canonical-path.js'
import sessionPlugin from './session/session-plugin.js'
import csrfPlugin from './edge/csrf.js'
import corsPlugin from './edge/cors.js'
import loginRateLimit from './edge/login-rate-limit.js'
import authRoutes from './auth/auth-routes.js'
import nativeSessionRoutes from './auth/native-session-routes.js'
import deviceRoutes from './auth/device-routes.js'
import backchannelLogoutRoute from './auth/backchannel-logout-route.js'
import ssfReceiverRoute from './auth/ssf-receiver-route.js'
import proxyPlugin from './proxy/proxy-plugin.js'
import health from './edge/health.js'
import staticFiles from './edge/static-files.js'
import adminRoutes from './admin/admin-routes.js'

export interface GatewayDeps {
  /** A store to use instead of the configured one (tests run the same app on several). */
  store?: SessionStore
  /** Lease of the cross-instance refresh lock; tests shorten it to prove renewal. */
  refreshLockLeaseMs?: number
  /** Where both listeners' log lines go instead of stdout (tests read audit lines there). */
  logStream?: LogStream
  /** Lifetime of a native handoff code instead of the contract's 60 s; tests shorten it to prove expiry. */
  handoffCodeTtlMs?: number
}

export interface Gateway {
  /** The public listener: browsers only. */
  app: FastifyInstance
  /** The operator listener: admin API, metrics, readiness. */
  admin: FastifyInstance
  /** Starts both listeners; resolves with their addresses. */
  listen (): Promise<{ public: string, admin: string }>
  /** First step of a graceful shutdown (edge/shutdown.ts): `/readyz` answers 503, every answer closes its connection, the listeners keep accepting. */
  drain (): void
  /** Re-reads `ROUTES_FILE` (proxy/route-policy-reload.ts); resolves with what became of it. */
  reloadRoutePolicy (by: ReloadTrigger): Promise<ReloadOutcome>
  /** Stops accepting at once, lets requests in flight finish, closes open WebSockets (1001) and every resource. */
  close (): Promise<void>
}

/** Builds (but does not start) a gateway. */
export async function buildApp (config: GatewayConfig, policy: RoutePolicy, deps: GatewayDeps = {}): Promise<Gateway> {
  checkPolicyAgainstConfig(policy, config)
  const app = Fastify(publicServerOptions(config, deps.logStream))
  // Before any plugin: child scopes take the error handler their parent has when they are registered.
  installErrorHandlers(app)
  // First: every hook after it runs knowing its request, so every log line names it.
  await app.register(requestScope)
  await app.register(gracefulClose)

  // Resources, each closed by its own plugin (in reverse order) when the gateway closes.
  await app.register(observability)
  // Only with an OTEL exporter variable set (config.ts); otherwise not even loaded, and no request pays for it.
  if (config.tracing) await app.register(import('./observability/tracing-plugin.js'), { config: config.tracing })
  // What every login asks the IdP for follows from the policy (fixed for the process: see route-policy-reload.ts).
  const loginNeeds = loginTokenNeeds(policy.routes)
  await app.register(oidcPlugin, { config, loginNeeds })
  await app.register(sessionStore, {
    config,
    ...(deps.store ? { store: deps.store } : {}),
    ...(deps.handoffCodeTtlMs !== undefined ? { handoffCodeTtlMs: deps.handoffCodeTtlMs } : {}),
  })
  await app.register(tokenPlugin, { config, loginNeeds, ...(deps.refreshLockLeaseMs ? { refreshLockLeaseMs: deps.refreshLockLeaseMs } : {}) })
  await app.register(routePolicy, { policy, routesFile: config.routesFile, scopes: config.oidc.scopes })

  // What every request meets, in order. First: every answer carries the security headers; every
  // hook after the cookie parser (which later onSend hooks rely on) sees exactly one Host and one
  // canonical path, and an overloaded gateway refuses work before it does any of its own.
  await app.register(securityHeaders, { publicUrl: config.publicUrl })
  await app.register(cookie)
  await app.register(loadShedding, { maxEventLoopDelayMs: config.maxEventLoopDelayMs })
  app.addHook('onRequest', refuseAmbiguousHost)
  await app.register(canonicalPath)
  await app.register(sessionPlugin, {
    cookieName: config.cookie.name,
    secure: config.cookie.secure,
    sameSite: config.cookie.sameSite,
    binding: { mode: config.sessionBinding, rules: config.sessionBindingNetwork },
    publicUrl: config.publicUrl,
  })
  await app.register(csrfPlugin, { allowedOrigins: [config.publicOrigin, ...config.allowedOrigins] })
  // Without extra origins there is nobody to give CORS headers to: the SPA is same-origin, and
  // the browser's same-origin policy stays whole. Nothing per request then (not even `Vary`).
  if (config.allowedOrigins.length > 0) await app.register(corsPlugin, { allowedOrigins: config.allowedOrigins })
  await app.register(loginRateLimit, { max: config.loginRateLimit, windowMs: 60_000, routes: ['/bff/login', '/bff/callback', '/bff/native/session'] })

  // The endpoints.
  await app.register(authRoutes, {
    publicUrl: config.publicUrl,
    rolesClaim: config.rolesClaim,
    sessionCookieName: config.cookie.name,
    loginCookieName: `${config.cookie.name}-login`,
    secureCookies: config.cookie.secure,
    nativeRedirectUris: config.nativeRedirectUris,
  })
  await app.register(nativeSessionRoutes, { publicUrl: config.publicUrl })
  await app.register(deviceRoutes)
  await app.register(backchannelLogoutRoute, {
    issuer: config.oidc.issuer,
    clientId: config.oidc.clientId,
    clockToleranceSeconds: config.oidc.clockToleranceSeconds,
  })
  // Without SSF_ISSUER there is no receiver: POST /bff/ssf/events is a 404 like any unknown path.
  if (config.ssf) await app.register(ssfReceiverRoute, { ...config.ssf, oidcIssuer: config.oidc.issuer })
  await app.register(proxyPlugin, { publicUrl: config.publicUrl, bodyLimit: config.proxyBodyLimit })
  await app.register(health)
  if (config.staticDir) await app.register(staticFiles, { root: config.staticDir })

  // The operator listener: a server of its own, on the gateway's resources.
  const admin = Fastify(adminServerOptions(config, deps.logStream))
  installErrorHandlers(admin)
  await admin.register(requestScope)
  admin.addHook('onRequest', refuseAmbiguousHost)
  await admin.register(gracefulClose)
  await admin.register(adminRoutes, { adminToken: config.adminToken, gateway: app })
  // Closed once the public listener has drained, before the resources it uses (hooks added later run first).
  app.addHook('onClose', async () => { await admin.close() })

  return {
    app,
    admin,
    async listen () {
      const publicAddress = await app.listen({ host: config.host, port: config.port })
      const adminAddress = await admin.listen({ host: config.adminHost, port: config.adminPort })
      return { public: publicAddress, admin: adminAddress }
    },
    drain () {
      app.drain.start()
    },
    reloadRoutePolicy (by) {
      return app.routePolicy.reload(by)
    },
    async close () {
      await app.close()
    },
  }
}
