/**
 * Metrics and audit events for the whole gateway: the Prometheus registry
 * (served on the admin listener), the audit trail, and one hook that counts
 * every answered request. (The proxy times its upstreams itself.)
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createMetrics, type GatewayMetrics } from './metrics.js'
import { createAudit, type Audit } from './audit.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
    audit: Audit
  }
}

async function observability (app: FastifyInstance) {
  const metrics = createMetrics()
  app.decorate('metrics', metrics)
  app.decorate('audit', createAudit(app.log, metrics))

  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) })
    done()
  })
}

export default fp(observability, { name: 'bff-observability' })
