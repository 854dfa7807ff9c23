/**
 * A rate limit on the endpoints that start and finish a login, per client IP
 * (as Fastify sees it, so behind a proxy set TRUST_PROXY), with
 * @fastify/rate-limit. Its counters live in the gateway's Redis when the
 * session store is Redis, so the limit holds across instances; otherwise in
 * memory. A store error lets the request through: the login itself then fails
 * closed on the session store.
 */
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, RouteOptions } from 'fastify'
import { RateLimited } from '../errors.js'
import { RATE_LIMIT_NAMESPACE } from '../session/keys.js'

export interface LoginRateLimitOptions {
  /** Requests per window per client IP, counted per endpoint. */
  max: number
  windowMs: number
  /** The routes (as registered) to limit. */
  routes: readonly string[]
}

async function loginRateLimit (app: FastifyInstance, options: LoginRateLimitOptions) {
  const limited = new Set(options.routes)
  // Before @fastify/rate-limit's own onRoute hook, which reads this config.
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!limited.has(route.url)) return
    route.config = { ...route.config, rateLimit: { max: options.max, timeWindow: options.windowMs } }
  })
  await app.register(rateLimit, {
    global: false,
    ...(app.redis ? { redis: app.redis } : {}),
    nameSpace: RATE_LIMIT_NAMESPACE,
    skipOnError: true,
    errorResponseBuilder: () => new RateLimited(),
  })
}

export default fp(loginRateLimit, { name: 'bff-login-rate-limit', dependencies: ['bff-session-store'] })
