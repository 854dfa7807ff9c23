/**
 * The route policy as a resource: `app.routePolicy` holds the policy in force
 * (read by the proxy's gate once per request) and reloads it from
 * `ROUTES_FILE` (route-policy-reload.ts); every reload is audited.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { loadRoutePolicy, type RoutePolicy } from './route-policy.js'
import { createRoutePolicyHolder, type ReloadOutcome, type RoutePolicyHolder } from './route-policy-reload.js'
import { checkPolicyAgainstConfig } from './token-policy.js'

declare module 'fastify' {
  interface FastifyInstance {
    routePolicy: RoutePolicyHolder
  }
}

export interface RoutePolicyPluginOptions {
  /** The start-up policy, read from `routesFile` by the process edge. */
  policy: RoutePolicy
  routesFile: string
  /** OIDC_SCOPES: a reloaded route's `scopes` must lie within them, as at start-up. */
  scopes: string
}

async function routePolicyPlugin (app: FastifyInstance, options: RoutePolicyPluginOptions) {
  const { audit, log } = app
  const onReload = (outcome: ReloadOutcome) => {
    const { result, by, before, after, problems } = outcome
    audit('route_policy_reload', { reason: result, by, before, after, ...(result === 'refused' ? { problems: problems.length } : {}) })
    if (result === 'refused') log.warn({ by, problems }, 'route policy reload refused; the policy in force stays')
  }
  app.decorate('routePolicy', createRoutePolicyHolder({
    initial: options.policy,
    load: async () => {
      const policy = await loadRoutePolicy(options.routesFile)
      checkPolicyAgainstConfig(policy, { oidc: { scopes: options.scopes } })
      return policy
    },
    onReload,
  }))
}

export default fp(routePolicyPlugin, { name: 'bff-route-policy', dependencies: ['bff-observability'] })
