/**
 * The operator listener: health, readiness, metrics, and `/admin/*`.
 * Never exposed publicly; `/admin/*` and `/metrics` need the admin bearer token.
 * Sessions are named by their public handle, never by a cookie value.
 */
import type { FastifyInstance } from 'fastify'
import { InvalidRequest, InvalidRoutePolicy, NotFound, Unauthenticated } from '../errors.js'
import { viewOf } from '../session/session-view.js'
import { createBearerTokenCheck } from '../edge/bearer-token.js'

/** The operator listener is a server of its own; it works on the public gateway's resources. */
export interface AdminRoutesOptions {
  adminToken: string
  gateway: Pick<FastifyInstance, 'metrics' | 'sessions' | 'revocation' | 'accounts' | 'oidc' | 'drain' | 'routePolicy'>
}

export default async function adminRoutes (app: FastifyInstance, options: AdminRoutesOptions) {
  const { metrics, oidc, sessions, revocation, accounts, drain, routePolicy } = options.gateway
  const authorised = createBearerTokenCheck(options.adminToken)

  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))

  app.get('/readyz', { logLevel: 'warn' }, async (request, reply) => {
    // A stopping gateway: load balancers must send it nothing more, whatever its dependencies say.
    if (drain.started) return reply.code(503).send({ status: 'draining' })
    const [storeCheck, idpCheck] = await Promise.allSettled([sessions.ping(), oidc.ready()])
    const checks = {
      sessionStore: storeCheck.status === 'fulfilled' ? 'ok' : 'unavailable',
      identityProvider: idpCheck.status === 'fulfilled' ? 'ok' : 'unavailable',
    }
    const ready = storeCheck.status === 'fulfilled' && idpCheck.status === 'fulfilled'
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks })
  })

  // Probes (healthz, readyz) stay open so orchestrators need no secret; metrics and /admin/* do not.
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => {
      if (!authorised(request.headers.authorization)) throw new Unauthenticated()
    })

    scope.get('/metrics', async (request, reply) => {
      reply.header('content-type', metrics.registry.contentType)
      return metrics.registry.metrics()
    })

    scope.get<{ Params: { sub: string } }>('/admin/users/:sub/sessions', async (request) => {
      return { sessions: (await sessions.listByUser(request.params.sub)).map(viewOf) }
    })

    // Lost device or role change: every session of the user ends, and the epoch bump also ends any
    // the index missed. Each device's refresh token is revoked at the IdP when it next shows up
    // (its tokens are sealed under a key only that browser holds), and its next login is forced
    // to re-authenticate at the IdP (prompt=login).
    scope.delete<{ Params: { sub: string } }>('/admin/users/:sub/sessions', async (request) => {
      return { revoked: await revocation.revoke({ sub: request.params.sub, reason: 'operator' }) }
    })

    // Account status, and rights changed at the IdP applied without a new login (docs/rights-changes.md).
    scope.get<{ Params: { sub: string } }>('/admin/users/:sub', async (request) => accounts.view(request.params.sub))

    // Every session ends now (an epoch bump ends any the index missed), and no login of theirs
    // creates a session until they are enabled again.
    scope.post<{ Params: { sub: string } }>('/admin/users/:sub/disable', async (request) => {
      return { revoked: await accounts.disable(request.params.sub, 'operator') }
    })

    scope.post<{ Params: { sub: string } }>('/admin/users/:sub/enable', async (request) => {
      await accounts.enable(request.params.sub, 'operator')
      return { sub: request.params.sub, status: 'active' }
    })

    // Roles or claims changed at the IdP: each session refreshes its tokens before its next use.
    scope.post<{ Params: { sub: string } }>('/admin/users/:sub/refresh', async (request) => {
      return { sessions: await accounts.requestRefresh({ sub: request.params.sub }, 'operator') }
    })

    scope.delete<{ Params: { id: string } }>('/admin/sessions/:id', async (request) => {
      if (await revocation.revoke({ handle: request.params.id, reason: 'operator' }) === 0) throw new NotFound()
      return { revoked: 1 }
    })

    scope.delete<{ Querystring: { all?: string } }>('/admin/sessions', async (request) => {
      if (request.query.all !== 'true') throw new InvalidRequest('Flushing every session needs ?all=true')
      return { revoked: await revocation.revoke({ all: true, reason: 'operator' }) }
    })

    // The route policy in force: its routes as the file has them, and the SHA-256 of the file's bytes.
    scope.get('/admin/routes', async () => {
      const { sha256, writtenRoutes } = routePolicy.current
      return { sha256, routes: writtenRoutes }
    })

    // Re-reads ROUTES_FILE, as SIGHUP does; a file that cannot be used leaves the policy in force.
    scope.post('/admin/routes/reload', async () => {
      const { result, before, after, problems } = await routePolicy.reload('admin')
      if (result === 'refused') throw new InvalidRoutePolicy(problems)
      return { result, sha256: after, previousSha256: before }
    })

    scope.all('/admin/*', async () => { throw new NotFound() })
  })
}
