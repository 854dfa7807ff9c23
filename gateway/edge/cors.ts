/**
 * CORS, closed by default: only the origins in ALLOWED_ORIGINS get CORS
 * headers (with credentials, the SPA's methods and the CSRF header); any other
 * origin gets none at all, so the browser keeps its same-origin policy. The
 * gateway's own origin needs no CORS. The CSRF layer still applies to every
 * allowed origin's calls, and its Sec-Fetch-Site check means an allowed origin
 * must be same-site (e.g. a sibling subdomain).
 */
import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import { CSRF_HEADER } from './csrf-checks.js'

const PREFLIGHT_MAX_AGE_SECONDS = 600

async function corsPlugin (app: FastifyInstance, options: { allowedOrigins: readonly string[] }) {
  const allowed = new Set(options.allowedOrigins)
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['content-type', CSRF_HEADER],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
  })
}

export default fp(corsPlugin, { name: 'bff-cors', dependencies: ['bff-csrf'] })
