/**
 * Load shedding on the public listener (@fastify/under-pressure): while the
 * event loop lags by more than `maxEventLoopDelayMs` on average over a second,
 * every request is refused before any work with 503 `overloaded` and
 * `Retry-After`, so the gateway keeps answering quickly (if only to say no)
 * instead of letting its queue grow until every client times out. Routes
 * whose config says `shedUnderPressure: false` (the health probe) are always
 * answered: an overloaded instance is alive, and a probe that failed would get
 * it restarted, with its queue, at the worst moment.
 *
 * The lag measures what a request waits before the gateway even reads it, so
 * it is the signal; event-loop utilisation is not used: it reaches 1 already
 * under moderate load, with latencies still low, and would refuse traffic the
 * gateway can serve well.
 */
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Overloaded } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: answered even while the gateway sheds load. */
    shedUnderPressure?: boolean
  }
}

export interface LoadSheddingOptions {
  /** Mean event-loop delay (ms) over the last second above which requests are shed; 0 turns shedding off. */
  maxEventLoopDelayMs: number
}

/**
 * What a shed request's client is told to wait. Pressure is measured once a second and an
 * overload outlasts a sample; a shorter wait would bring the same clients back into it.
 */
export const RETRY_AFTER_SECONDS = 5

// One instance for every refusal: building an error (and its stack) per shed request is work an overloaded gateway cannot spare.
const overloaded = new Overloaded()

function refuse (request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined {
  if (request.routeOptions.config.shedUnderPressure === false) return undefined
  reply.header('retry-after', String(RETRY_AFTER_SECONDS))
  // A rejection is how the library's handler hands an error to Fastify's error handler (and so to the contract's JSON).
  return Promise.reject(overloaded)
}

async function loadShedding (app: FastifyInstance, options: LoadSheddingOptions) {
  if (options.maxEventLoopDelayMs === 0) return
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    pressureHandler: refuse,
  })
}

export default fp(loadShedding, { name: 'bff-load-shedding' })
