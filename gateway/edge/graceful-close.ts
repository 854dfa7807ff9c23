/**
 * Graceful close of a listener: requests in flight finish, then their
 * keep-alive connections are closed (answers sent while closing say
 * `Connection: close`, and connections that turn idle are closed as they do),
 * so `close()` resolves as soon as the last request is done.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

const IDLE_SWEEP_MS = 50

async function gracefulClose (server: FastifyInstance) {
  let draining: NodeJS.Timeout | undefined
  server.addHook('preClose', async () => {
    draining = setInterval(() => server.server.closeIdleConnections(), IDLE_SWEEP_MS)
    draining.unref()
  })
  server.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })
  server.addHook('onClose', async () => clearInterval(draining))
}

export default fp(gracefulClose, { name: 'bff-graceful-close' })
