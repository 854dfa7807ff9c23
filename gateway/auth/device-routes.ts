/**
 * Self-service devices: a signed-in user lists their sessions and signs out
 * other ones (`GET /bff/sessions`, `DELETE /bff/sessions/:id`,
 * `DELETE /bff/sessions?others=true`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidRequest, NotFound, Unauthenticated } from '../errors.js'
import { byLastSeen, viewOf } from '../session/session-view.js'

async function deviceRoutes (app: FastifyInstance) {
  const store = app.sessions.store
  const { audit } = app

  async function currentSession (request: FastifyRequest) {
    const session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    return session
  }

  app.get('/bff/sessions', async (request, reply) => {
    const current = await currentSession(request)
    const sessions = (await store.listByUser(current.meta.sub)).sort(byLastSeen)
    reply.header('cache-control', 'no-store')
    return { sessions: sessions.map(s => ({ ...viewOf(s), current: s.handle === current.handle })) }
  })

  app.delete<{ Params: { id: string } }>('/bff/sessions/:id', { config: { csrf: true } }, async (request) => {
    const current = await currentSession(request)
    const { id } = request.params
    if (id === current.handle) throw new InvalidRequest('To end this session, use POST /bff/logout')
    const target = await store.get(id)
    // Another user's session is reported exactly like a missing one.
    if (!target || target.revoked || target.meta.sub !== current.meta.sub || !(await store.revoke(id, 'user'))) throw new NotFound()
    audit('session_revoked', { reason: 'user', sub: current.meta.sub, session: id })
    return { revoked: 1 }
  })

  app.delete<{ Querystring: { others?: string } }>('/bff/sessions', { config: { csrf: true } }, async (request) => {
    const current = await currentSession(request)
    if (request.query.others !== 'true') throw new InvalidRequest('Use ?others=true to sign out every other device')
    const others = (await store.listByUser(current.meta.sub)).filter(s => s.handle !== current.handle)
    let revoked = 0
    for (const session of others) if (await store.revoke(session.handle, 'user')) revoked += 1
    audit('session_revoked', { reason: 'user_others', sub: current.meta.sub, revoked })
    return { revoked }
  })
}

export default fp(deviceRoutes, { name: 'bff-device-routes', dependencies: ['bff-session', 'bff-csrf', 'bff-observability'] })
