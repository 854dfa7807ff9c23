/**
 * Security headers on every response of the public listener.
 *
 * Pages and the gateway's own answers get helmet's set. The CSP fits a
 * same-origin SPA such as `demo/`: scripts, styles and API calls from our own
 * origin only, no inline code, no framing. HSTS and upgrade-insecure-requests
 * only when PUBLIC_URL is https, so a plain-http demo on localhost keeps working.
 *
 * Proxied API routes get a smaller set meant for data: an API answer must never
 * be sniffed into something runnable, framed, or allowed to load anything.
 *
 * helmet works out the header values once, at startup: ours never vary per
 * request (no nonces). @fastify/helmet would rebuild helmet's middleware and hang
 * a closure on the reply for every request; under load that kept every request's
 * objects alive into the old generation, and garbage collection took much of the
 * gateway's throughput (bench/HISTORY.md).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { API_SECURITY_HEADERS, pageSecurityHeaders, securityHeaderOptions } from './security-header-values.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which set of security headers the route's responses carry; `page` when unset. */
    securityHeaders?: 'page' | 'api'
  }
}

async function securityHeaders (app: FastifyInstance, options: { publicUrl: string }) {
  const page = pageSecurityHeaders(securityHeaderOptions(options.publicUrl))
  // In onRequest, so that every answer has them, errors and refusals by later hooks included.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(request.routeOptions.config?.securityHeaders === 'api' ? API_SECURITY_HEADERS : page)
    done()
  })
}

export default fp(securityHeaders, { name: 'bff-security-headers' })
