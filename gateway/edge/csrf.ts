/**
 * The layered CSRF defence.
 *
 * 1. `Sec-Fetch-Site: cross-site` is refused on every endpoint except the three
 *    that other sites legitimately reach (login, the IdP's callback redirect,
 *    the IdP's back-channel POST), whatever the method.
 * 2. On state-changing methods of protected routes, an `Origin` header, when
 *    present, must be the gateway's own origin or an allowed one.
 * 3. On those same requests, `X-CSRF-Token` must equal the session's token
 *    (constant-time). A token per session, read from `/bff/user`, which a
 *    cross-site page cannot read.
 *
 * 4. A WebSocket handshake is a GET that a page on any site can start with the
 *    browser's cookies, and it cannot carry a custom header: it must carry an
 *    allowed `Origin` (browsers always send one).
 *
 * Routes opt in through their config (`csrf: true`) and out of the fetch-site
 * check with `crossSiteAllowed: true`; there is no global switch to turn it off.
 */
import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { Csrf, Unauthenticated } from '../errors.js'
import { checkFetchSite, checkOrigin, checkWebSocketOrigin, CSRF_HEADER, tokensMatch, UNSAFE_METHODS, type CsrfRefusal } from './csrf-checks.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Require the CSRF token and an allowed Origin on unsafe methods. */
    csrf?: boolean
    /** Skip the Sec-Fetch-Site check (endpoints other sites must reach). */
    crossSiteAllowed?: boolean
  }
}

export interface CsrfOptions {
  allowedOrigins: readonly string[]
}

async function csrfPlugin (app: import('fastify').FastifyInstance, options: CsrfOptions) {
  const allowed = new Set(options.allowedOrigins)
  const refuse = (request: FastifyRequest, reason: CsrfRefusal) => {
    app.audit('csrf_refused', { reason, ip: request.ip })
    return new Csrf()
  }

  app.addHook('onRequest', (request, _reply, done) => {
    if (!request.routeOptions.config?.crossSiteAllowed) {
      const verdict = checkFetchSite(request.headers['sec-fetch-site'])
      if (!verdict.ok) return done(refuse(request, verdict.reason))
    }
    // Node marks requests that asked to switch protocols (only while someone listens for upgrades).
    if ((request.raw as IncomingMessage & { upgrade?: boolean }).upgrade === true) {
      const verdict = checkWebSocketOrigin(request.headers.origin, allowed)
      if (!verdict.ok) return done(refuse(request, verdict.reason))
    }
    done()
  })

  async function checkToken (request: FastifyRequest): Promise<void> {
    const origin = checkOrigin(request.headers.origin, allowed)
    if (!origin.ok) throw refuse(request, origin.reason)
    const session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    const header = request.headers[CSRF_HEADER]
    if (!tokensMatch(typeof header === 'string' ? header : undefined, session.secrets.csrfToken)) {
      throw refuse(request, 'token')
    }
  }

  // Callback-style, so that safe methods (most API calls) pass without a promise.
  app.addHook('preHandler', (request, _reply, done) => {
    if (!UNSAFE_METHODS.has(request.method) || !request.routeOptions.config?.csrf) {
      done()
      return
    }
    checkToken(request).then(() => done(), done)
  })
}

export default fp(csrfPlugin, { name: 'bff-csrf', dependencies: ['bff-session', 'bff-observability'] })
