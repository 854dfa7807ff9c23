/**
 * One path, decoded once, for every request: the raw request target is
 * normalised before anything else looks at it, ambiguous forms are refused
 * with 400 `invalid_path` (414 `uri_too_long` past the length limit), and the
 * result is kept on the request for the route policy, which must match exactly
 * the path the upstream will receive.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { canonicalPathOf, type NormalisedPath } from './normalise-path.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The canonical form of the request path; set by the first onRequest hook. */
    bffPath: NormalisedPath | null
  }
}

async function canonicalPath (app: FastifyInstance) {
  app.decorateRequest('bffPath', null)
  // Callback-style hooks here and in the other per-request plugins: no promise and no microtask per hook.
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      request.bffPath = canonicalPathOf(request.raw.url ?? '')
    } catch (error) {
      done(error as Error)
      return
    }
    done()
  })
}

export default fp(canonicalPath, { name: 'bff-canonical-path' })
