/**
 * The operator listener: health, readiness, metrics, and `/admin/*`.
 * Never exposed publicly; every `/admin/*` call needs the admin bearer token.
 */
import type { FastifyInstance } from 'fastify'
import { NotFound, Unauthenticated } from '../errors.js'
import type { GatewayMetrics } from '../metrics.js'
import type { SessionStore } from '../session/store.js'
import type { OidcClient } from '../auth/oidc-client.js'
import { createAdminTokenCheck } from './admin-auth.js'

export interface AdminRoutesOptions {
  adminToken: string
  metrics: GatewayMetrics
  store: SessionStore
  oidc: OidcClient
}

export default async function adminRoutes (app: FastifyInstance, options: AdminRoutesOptions) {
  const { metrics, store, oidc } = options
  const authorised = createAdminTokenCheck(options.adminToken)

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (request, reply) => {
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
    scope.all('/admin/*', async () => { throw new NotFound() })
  })
}
