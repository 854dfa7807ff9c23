/**
 * Graceful close of a listener, in two steps.
 *
 * Draining (`drain.start()`, the first step of a stopping gateway, while load
 * balancers take it out of rotation): the listener still accepts and serves,
 * but every answer says `Connection: close`, so a keep-alive client opens its
 * next connection afresh, to an instance still in rotation. Idle connections
 * are left alone: closing one can cross a request the client is sending on it,
 * which that client then sees reset.
 *
 * Closing (Fastify's `close()`): requests in flight finish, then their
 * connections are closed (answers say `Connection: close`, and connections
 * that turn idle are closed as they do), so `close()` resolves as soon as the
 * last request is done.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    drain: Drain
  }
}

export interface Drain {
  /** True from `start()` (or the start of `close()`) on. */
  readonly started: boolean
  /** From now on every answer closes its connection; the listener keeps accepting. */
  start (): void
}

const IDLE_SWEEP_MS = 50

async function gracefulClose (server: FastifyInstance) {
  let started = false
  let sweep: NodeJS.Timeout | undefined
  server.decorate('drain', {
    get started () { return started },
    start () { started = true },
  } satisfies Drain)
  server.addHook('preClose', async () => {
    started = true
    sweep = setInterval(() => server.server.closeIdleConnections(), IDLE_SWEEP_MS)
    sweep.unref()
  })
  server.addHook('onSend', (_request, reply, payload, done) => {
    if (started) reply.header('connection', 'close')
    done(null, payload)
  })
  server.addHook('onClose', async () => clearInterval(sweep))
}

export default fp(gracefulClose, { name: 'bff-graceful-close' })
