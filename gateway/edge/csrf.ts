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
 * A native app's device-bound session needs no token: its credential travels
 * in a header no browser adds by itself, with a proof only the app's key can
 * sign, so no other site can make a request that carries it.
 *
 * The BFF's own endpoints opt in through their config (`csrf: true`); the
 * proxy's gate calls `app.checkCsrf` as one of its steps. Routes opt out of the
 * fetch-site check with `crossSiteAllowed: true`; there is no global switch to
 * turn any of it off.
 */
import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Csrf, Unauthenticated } from '../errors.js'
import { isDeviceBound, type ActiveSession } from '../session/active-session.js'
import { checkFetchSite, checkOrigin, checkWebSocketOrigin, CSRF_HEADER, tokensMatch, UNSAFE_METHODS, type CsrfRefusal } from './csrf-checks.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Layers 2 and 3 for one request: on an unsafe method, an Origin (when sent) must be allowed
     * and, when the request has a session, `X-CSRF-Token` must equal its token.
     * @throws Csrf
     */
    checkCsrf (request: FastifyRequest, session: ActiveSession | undefined): void
  }
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

async function csrfPlugin (app: FastifyInstance, options: CsrfOptions) {
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

  const checkRequestOrigin = (request: FastifyRequest) => {
    const origin = checkOrigin(request.headers.origin, allowed)
    if (!origin.ok) throw refuse(request, origin.reason)
  }
  const checkToken = (request: FastifyRequest, session: ActiveSession) => {
    if (isDeviceBound(session)) return
    const header = request.headers[CSRF_HEADER]
    if (!tokensMatch(typeof header === 'string' ? header : undefined, session.secrets.csrfToken)) {
      throw refuse(request, 'token')
    }
  }

  app.decorate('checkCsrf', function checkCsrf (request: FastifyRequest, session: ActiveSession | undefined): void {
    if (!UNSAFE_METHODS.has(request.method)) return
    checkRequestOrigin(request)
    if (session) checkToken(request, session)
  })

  // The BFF's own state-changing endpoints all need a session; the Origin is judged before it is read.
  const checkSignedIn = (request: FastifyRequest, session: ActiveSession | undefined) => {
    if (!session) throw new Unauthenticated()
    checkToken(request, session)
  }
  app.addHook('preHandler', (request, _reply, done) => {
    if (!UNSAFE_METHODS.has(request.method) || !request.routeOptions.config?.csrf) return done()
    try {
      checkRequestOrigin(request)
      const loaded = request.loadSession()
      if (loaded instanceof Promise) {
        loaded.then((session) => checkSignedIn(request, session)).then(() => done(), done)
        return
      }
      checkSignedIn(request, loaded)
    } catch (error) {
      done(error as Error)
      return
    }
    done()
  })
}

export default fp(csrfPlugin, { name: 'bff-csrf', dependencies: ['bff-session', 'bff-observability'] })
