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
 * objects alive into the old generation and cost a third of the gateway's
 * throughput in garbage collection (bench/README.md).
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which set of security headers the route's responses carry; `page` when unset. */
    securityHeaders?: 'page' | 'api'
  }
}

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60

export type SecurityHeaders = Readonly<Record<string, string>>

/** For proxied API answers; `forward-headers.ts` keeps the upstream from replacing them. */
export const API_SECURITY_HEADERS: SecurityHeaders = Object.freeze({
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
})

export function securityHeaderOptions (publicUrl: string): HelmetOptions {
  const https = new URL(publicUrl).protocol === 'https:'
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: https ? { maxAge: ONE_YEAR_SECONDS, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
  }
}

/** The headers helmet sets with these options, as lower-case name → value. */
export function pageSecurityHeaders (options: HelmetOptions): SecurityHeaders {
  // helmet is Connect middleware: run it once against a response nobody sends, and read what it set.
  const response = new ServerResponse(new IncomingMessage(new Socket()))
  helmet(options)(response.req, response, (error?: unknown) => {
    if (error) throw error
  })
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(response.getHeaders())) {
    if (value !== undefined) headers[name] = String(value)
  }
  return Object.freeze(headers)
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
