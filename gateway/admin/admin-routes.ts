/**
 * The operator listener: health, readiness, metrics, and `/admin/*`.
 * Never exposed publicly; `/admin/*` and `/metrics` need the admin bearer token.
 * Sessions are named by their public handle, never by a cookie value.
 */
import type { FastifyInstance } from 'fastify'
import { InvalidRequest, NotFound, Unauthenticated } from '../errors.js'
import { byLastSeen, viewOf } from '../session/session-view.js'
import { createAdminTokenCheck } from './admin-auth.js'

/** The operator listener is a server of its own; it works on the public gateway's resources. */
export interface AdminRoutesOptions {
  adminToken: string
  gateway: Pick<FastifyInstance, 'metrics' | 'sessions' | 'oidc' | 'audit'>
  absoluteTimeoutSeconds: number
}

export default async function adminRoutes (app: FastifyInstance, options: AdminRoutesOptions) {
  const { metrics, oidc, audit } = options.gateway
  const store = options.gateway.sessions.store
  const authorised = createAdminTokenCheck(options.adminToken)

  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))

  app.get('/readyz', { logLevel: 'warn' }, async (request, reply) => {
    const [storeCheck, idpCheck] = await Promise.allSettled([store.ping(), oidc.ready()])
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
      const sessions = (await store.listByUser(request.params.sub)).sort(byLastSeen)
      return { sessions: sessions.map(viewOf) }
    })

    // Lost device or role change: every session of the user ends, and the epoch bump also ends any
    // the index missed. Each device's refresh token is revoked at the IdP when it next shows up
    // (its tokens are sealed under a key only that browser holds), and its next login is forced
    // to re-authenticate at the IdP (prompt=login).
    scope.delete<{ Params: { sub: string } }>('/admin/users/:sub/sessions', async (request) => {
      const { sub } = request.params
      const revoked = await store.revokeByUser(sub, 'operator')
      await store.bumpUserEpoch(sub, options.absoluteTimeoutSeconds * 1000)
      audit('session_revoked', { reason: 'operator', scope: 'user', sub, revoked: revoked.length })
      return { revoked: revoked.length }
    })

    scope.delete<{ Params: { id: string } }>('/admin/sessions/:id', async (request) => {
      const session = await store.get(request.params.id)
      if (!session || !(await store.revoke(request.params.id, 'operator'))) throw new NotFound()
      audit('session_revoked', { reason: 'operator', scope: 'session', sub: session.meta.sub, session: session.handle })
      return { revoked: 1 }
    })

    scope.delete<{ Querystring: { all?: string } }>('/admin/sessions', async (request) => {
      if (request.query.all !== 'true') throw new InvalidRequest('Flushing every session needs ?all=true')
      const revoked = await store.revokeAll('operator')
      audit('session_revoked', { reason: 'operator', scope: 'all', revoked })
      return { revoked }
    })

    scope.all('/admin/*', async () => { throw new NotFound() })
  })
}
