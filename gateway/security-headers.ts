/**
 * Security headers on every response of the public listener, with
 * @fastify/helmet. The CSP fits a same-origin SPA such as `demo/`: scripts,
 * styles and API calls from our own origin only, no inline code, no framing.
 * HSTS and upgrade-insecure-requests only when PUBLIC_URL is https, so a
 * plain-http demo on localhost keeps working.
 */
import fp from 'fastify-plugin'
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60

export function securityHeaderOptions (publicUrl: string): FastifyHelmetOptions {
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

async function securityHeaders (app: FastifyInstance, options: { publicUrl: string }) {
  await app.register(helmet, securityHeaderOptions(options.publicUrl))
}

export default fp(securityHeaders, { name: 'bff-security-headers' })
