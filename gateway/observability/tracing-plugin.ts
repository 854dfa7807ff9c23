/**
 * OpenTelemetry tracing of the public listener, registered only when an OTEL
 * exporter variable is set (app.ts): without one, none of this is loaded.
 *
 * Per request: a server span, entered as the context of everything the
 * request does (its hooks, handler and what they wait for), its trace id on
 * the request's log lines, ended when the answer is sent or the connection
 * closes. An incoming `traceparent` is continued only when a proxy that
 * TRUST_PROXY trusts forwarded the request; from anyone else it is ignored
 * and the request starts a trace of its own. Spans are flushed and the SDK
 * shut down when the gateway closes.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { TracingConfig } from '../config.js'
import { addRequestLogFields } from './logging.js'
import { createTracerProvider } from './tracing-sdk.js'
import { createGatewayTracing } from './tracing.js'
import { createTracingHooks, type TracingHooks } from './tracing-hooks.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Only while tracing is on: how resources get their spans, each where it is created. */
    tracing?: TracingHooks
  }
}

export interface TracingPluginOptions {
  config: TracingConfig
}

/** The longest a closing gateway waits for its last spans to reach the collector. */
const FLUSH_ON_CLOSE_MS = 5000

/**
 * Whether the request came through a proxy TRUST_PROXY trusts, judged as Fastify judges the client
 * address: its direct peer is trusted and it says whom it forwards for (X-Forwarded-For).
 */
function forwardedByTrustedProxy (request: FastifyRequest): boolean {
  return (request.ips?.length ?? 0) > 1
}

async function tracingPlugin (app: FastifyInstance, options: TracingPluginOptions) {
  const { config } = options
  const provider = createTracerProvider(config, {
    // The endpoint is not logged: it may carry credentials.
    onExportFailed: (error) => app.log.warn({ err: error }, 'trace export failed: a batch of spans was dropped'),
  })
  const tracing = createGatewayTracing(provider.getTracer('bff-gateway'))
  app.decorate('tracing', createTracingHooks(tracing))
  if (config.protocol === 'http/protobuf') {
    app.log.warn('OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: spans are sent as OTLP/HTTP JSON, which OTLP/HTTP receivers accept as well')
  }

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const continued = request.headers.traceparent !== undefined && forwardedByTrustedProxy(request)
    const trace = tracing.startRequest(request.method, request.routeOptions.url, continued ? request.headers : undefined)
    addRequestLogFields(request, { trace_id: trace.traceId, span_id: trace.spanId })
    // 'close' comes after the answer is sent, and also when the browser leaves before it is.
    reply.raw.once('close', () => tracing.endRequest(trace, reply.statusCode, reply.raw.writableFinished))
    tracing.runIn(trace, done)
  })

  app.addHook('onClose', async () => {
    const shutdown = provider.shutdown().catch((error: unknown) => app.log.warn({ err: error }, 'tracing did not shut down cleanly; the last spans may be lost'))
    await Promise.race([shutdown, sleep(FLUSH_ON_CLOSE_MS, undefined, { ref: false })])
  })
}

export default fp(tracingPlugin, { name: 'bff-tracing', dependencies: ['bff-request-scope'] })
