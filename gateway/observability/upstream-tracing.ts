/**
 * The upstream call as a client span, from an undici interceptor composed
 * onto the proxy's dispatcher: each request sent upstream inside a traced
 * request gets a span (method, upstream address, URL without its query, the
 * upstream's status) and carries that span's W3C `traceparent`, in place of
 * any the browser sent.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { defaultTextMapSetter, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_URL_FULL,
} from '@opentelemetry/semantic-conventions'
import type { Dispatcher } from 'undici'
import { markFailed, type GatewayTracing } from './tracing.js'

// The trace context headers a request may arrive with; the upstream gets ours instead.
const TRACE_CONTEXT_HEADERS = ['traceparent', 'tracestate']

interface Upstream { origin: string, address: string, port: number }

/** The handler undici calls back, passing everything on and ending the span with the answer. */
class TracedExchange implements Dispatcher.DispatchHandler {
  #ended = false

  constructor (private readonly inner: Dispatcher.DispatchHandler, private readonly span: Span) {}

  onRequestStart (controller: Dispatcher.DispatchController, context: unknown): void {
    this.inner.onRequestStart?.(controller, context)
  }

  onRequestUpgrade (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.#end(statusCode)
    this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // An informational answer (100, 103) is followed by the real one.
    if (statusCode >= 200) {
      this.span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode)
      // For a client, 4xx is a failed call too (HTTP semantic conventions).
      if (statusCode >= 400) {
        this.span.setAttribute(ATTR_ERROR_TYPE, String(statusCode))
        this.span.setStatus({ code: SpanStatusCode.ERROR })
      }
    }
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk)
  }

  onResponseEnd (controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.#end()
    this.inner.onResponseEnd?.(controller, trailers)
  }

  onResponseError (controller: Dispatcher.DispatchController, error: Error): void {
    if (!this.#ended) markFailed(this.span, error)
    this.#end()
    this.inner.onResponseError?.(controller, error)
  }

  #end (statusCode?: number): void {
    if (this.#ended) return
    this.#ended = true
    if (statusCode !== undefined) this.span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode)
    this.span.end()
  }
}

/** The request's headers as an object of our own, which the trace context can be written into. */
function headersObject (headers: Dispatcher.DispatchOptions['headers']): Record<string, string | string[] | undefined> {
  if (headers === null || headers === undefined) return {}
  if (Array.isArray(headers)) {
    const object: Record<string, string> = {}
    for (let i = 0; i + 1 < headers.length; i += 2) object[String(headers[i]).toLowerCase()] = String(headers[i + 1])
    return object
  }
  if (Symbol.iterator in headers) {
    const object: Record<string, string | string[] | undefined> = {}
    for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) object[name.toLowerCase()] = value
    return object
  }
  return { ...(headers as Record<string, string | string[] | undefined>) }
}

/** An interceptor for `dispatcher.compose(…)`: a client span and a `traceparent` per upstream request. */
export function upstreamTracingInterceptor (tracing: GatewayTracing): Dispatcher.DispatcherComposeInterceptor {
  const propagator = new W3CTraceContextPropagator()
  // A handful of upstreams, each parsed once.
  const upstreams = new Map<string, Upstream>()
  const upstreamOf = (origin: string | URL): Upstream => {
    const key = String(origin)
    let found = upstreams.get(key)
    if (!found) {
      const url = new URL(key)
      found = { origin: url.origin, address: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) }
      upstreams.set(key, found)
    }
    return found
  }

  return (dispatch) => (options, handler) => {
    const parent = tracing.parentContext()
    // Outside a traced request (undici's `compose` hands us every handler in its current, callback-per-phase form).
    if (!parent || options.origin === undefined) return dispatch(options, handler)
    const upstream = upstreamOf(options.origin)
    const queryAt = options.path.indexOf('?')
    const span = tracing.tracer.startSpan(options.method, {
      kind: SpanKind.CLIENT,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: options.method,
        [ATTR_SERVER_ADDRESS]: upstream.address,
        [ATTR_SERVER_PORT]: upstream.port,
        [ATTR_URL_FULL]: upstream.origin + (queryAt === -1 ? options.path : options.path.slice(0, queryAt)),
      },
    }, parent)
    const headers = headersObject(options.headers)
    for (const name of TRACE_CONTEXT_HEADERS) delete headers[name]
    propagator.inject(trace.setSpan(parent, span), headers, defaultTextMapSetter)
    try {
      return dispatch({ ...options, headers }, new TracedExchange(handler, span))
    } catch (error) {
      markFailed(span, error)
      span.end()
      throw error
    }
  }
}
