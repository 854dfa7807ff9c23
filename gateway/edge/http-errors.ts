/**
 * Turns every error into the contract's JSON body with the right status.
 * 5xx callers see only the code; the whole error (with its cause) goes to the log.
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import { InvalidRoutePolicy, NotFound, Overloaded, publicCode, StepUpRequired, type ErrorBody } from '../errors.js'

function bodyFor (error: FastifyError): { status: number, body: ErrorBody } {
  const code = publicCode(error.code)
  if (error instanceof StepUpRequired) return { status: 401, body: { error: code ?? 'step_up_required', message: error.message, loginUrl: error.loginUrl } }
  if (error instanceof InvalidRoutePolicy) return { status: 400, body: { error: code ?? 'invalid_route_policy', message: error.message, problems: error.problems } }
  if (code) return { status: error.statusCode ?? 500, body: { error: code, message: error.message } }
  const status = error.statusCode ?? 500
  // Fastify's own client errors (bad JSON, body too large, bad content type, …).
  if (status === 413) return { status, body: { error: 'payload_too_large', message: 'The request body is too large' } }
  if (status === 429) return { status, body: { error: 'rate_limited', message: 'Too many requests; slow down' } }
  if (status >= 400 && status < 500) return { status, body: { error: 'invalid_request', message: 'The request is malformed' } }
  return { status: 500, body: { error: 'internal', message: 'Internal error' } }
}

export function installErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, body } = bodyFor(error)
    // Shed load (edge/load-shedding.ts) is no failure to investigate, and a stack per refusal is work an overloaded gateway cannot spare.
    if (error instanceof Overloaded) request.log.warn({ code: body.error }, 'request shed: overloaded')
    else if (status >= 500) request.log.error({ err: error }, `request failed: ${body.error}`)
    else request.log.info({ code: body.error }, `request refused: ${body.error}`)
    return reply.code(status).header('cache-control', 'no-store').send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    const error = new NotFound()
    return reply.code(404).send({ error: 'not_found', message: error.message })
  })
}
