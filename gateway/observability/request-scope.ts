/**
 * The request a piece of code runs for, wherever it runs: the log fields that
 * name it (its id, and its trace when tracing is on), kept in an
 * AsyncLocalStorage from the first hook on. Lines written through a request's
 * own logger carry them as bindings; this scope is for everything else that
 * logs during a request without holding it (audit events deep in revocation
 * or the token refresher, warnings of shared resources), through the loggers'
 * mixin (logging.ts).
 *
 * The cost per request is one hook and one `run` (on Node.js 24 and later a
 * context frame: a small object), nothing else.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'

/** The fields every log line written during a request carries; `trace_id` and `span_id` only while tracing. */
export interface RequestLogFields {
  readonly reqId: string
  trace_id?: string
  span_id?: string
}

const scopes = new AsyncLocalStorage<RequestLogFields>()

/** The log fields of the request the caller runs for, or undefined outside any request. */
export function currentRequestFields (): RequestLogFields | undefined {
  return scopes.getStore()
}

// Everything after this hook runs inside `done` or continues from it, a body read later included
// (Node.js runs a request's stream events in the request's context; test/unit/logging.test.ts holds it to that).
function enter (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  scopes.run({ reqId: request.id }, done)
}

async function requestScope (server: FastifyInstance) {
  server.addHook('onRequest', enter)
}

/** Registered first on each listener, so every hook after it runs inside the request's scope. */
export default fp(requestScope, { name: 'bff-request-scope' })
