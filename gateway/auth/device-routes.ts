/**
 * Self-service devices: a signed-in user lists their sessions and signs out
 * other ones (`GET /bff/sessions`, `DELETE /bff/sessions/:id`,
 * `DELETE /bff/sessions?others=true`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidRequest, NotFound, Unauthenticated } from '../errors.js'
import { viewOf } from '../session/session-view.js'

async function deviceRoutes (app: FastifyInstance) {
  const { sessions, revocation } = app

  async function currentSession (request: FastifyRequest) {
    const session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    return session
  }

  app.get('/bff/sessions', async (request, reply) => {
    const current = await currentSession(request)
    const devices = await sessions.listByUser(current.meta.sub)
    reply.header('cache-control', 'no-store')
    return { sessions: devices.map(s => ({ ...viewOf(s), current: s.handle === current.handle })) }
  })

  app.delete<{ Params: { id: string } }>('/bff/sessions/:id', { config: { csrf: true } }, async (request) => {
    const current = await currentSession(request)
    const { id } = request.params
    if (id === current.handle) throw new InvalidRequest('To end this session, use POST /bff/logout')
    // Another user's session is reported exactly like a missing one.
    if (await revocation.revoke({ handle: id, sub: current.meta.sub, reason: 'user' }) === 0) throw new NotFound()
    return { revoked: 1 }
  })

  app.delete<{ Querystring: { others?: string } }>('/bff/sessions', { config: { csrf: true } }, async (request) => {
    const current = await currentSession(request)
    if (request.query.others !== 'true') throw new InvalidRequest('Use ?others=true to sign out every other device')
    return { revoked: await revocation.revoke({ sub: current.meta.sub, except: current.handle, reason: 'user' }) }
  })
}

export default fp(deviceRoutes, { name: 'bff-device-routes', dependencies: ['bff-session', 'bff-session-store', 'bff-csrf'] })
