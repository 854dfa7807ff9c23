/**
 * The gateway's spans: one server span per public request, and below it the
 * work the request waits for (a session read, a token refresh, store and
 * identity-provider calls, the upstream call). Parents are found through an
 * AsyncLocalStorage context manager that the tracing plugin enters per
 * request; nothing outside a traced request makes a span (background work,
 * the admin listener).
 *
 * What a span may hold is decided here: method names, route templates,
 * statuses, error codes and upstream URLs without their query. Never a
 * token, a cookie, a session id or a query string: call arguments and error
 * messages are never recorded.
 */
import type { IncomingHttpHeaders } from 'node:http'
import {
  createContextKey, defaultTextMapGetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Span, type Tracer,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE } from '@opentelemetry/semantic-conventions'
import { publicCode } from '../errors.js'

/** A public request's server span and the context its work runs in. */
export interface RequestTrace {
  readonly span: Span
  readonly context: Context
  readonly traceId: string
  readonly spanId: string
}

export interface TracedCallOptions {
  kind?: SpanKind
  attributes?: Attributes
}

export interface GatewayTracing {
  /**
   * Starts a request's server span, named after its route template; `incoming` are the request's
   * headers when its `traceparent` may be continued (it came through a trusted proxy).
   */
  startRequest (method: string, route: string | undefined, incoming: IncomingHttpHeaders | undefined): RequestTrace
  /** Ends it with the status the browser got, or as cut short when the connection closed first. */
  endRequest (request: RequestTrace, statusCode: number, answered: boolean): void
  /** Runs `work` inside the request's trace: what it starts becomes the request's child. */
  runIn<T> (request: RequestTrace, work: () => T): T
  /**
   * `fn`, whose calls get a span `name` only once something inside them does traced I/O (a store
   * or identity-provider call): a session answered from memory has no span.
   */
  spanOnIo<A extends unknown[], R> (name: string, fn: (...args: A) => R): (...args: A) => R
  /** `target` with a span around each call of the methods `spanName` names (the others as they are). */
  traceCalls<T extends object> (target: T, spanName: (method: string) => string | undefined, options?: TracedCallOptions): T
  /** The context to start a child span in: the request's (or one of its spans'), undefined outside any. */
  parentContext (): Context | undefined
  readonly tracer: Tracer
}

/** A span that is only started when a child needs it. */
const DEFERRED_SPAN = createContextKey('bff deferred span')

class DeferredSpan {
  #context: Context | undefined
  #span: Span | undefined
  #closed = false

  constructor (private readonly tracer: Tracer, private readonly name: string, private readonly parent: Context, private readonly startTime: number) {}

  /** The context for a child: with this span (started now, dated from when its call began), unless that call has settled. */
  open (): Context {
    if (this.#closed) return this.parent
    if (!this.#context) {
      this.#span = this.tracer.startSpan(this.name, { kind: SpanKind.INTERNAL, startTime: this.startTime }, this.parent)
      this.#context = trace.setSpan(this.parent, this.#span)
    }
    return this.#context
  }

  close (error?: unknown): void {
    this.#closed = true
    if (!this.#span) return
    if (error !== undefined) markFailed(this.#span, error)
    this.#span.end()
  }
}

/**
 * What an error is, for a span: a gateway error's public code (`session_store_unavailable`), an
 * identity provider's OAuth code, or the error's class; never its message.
 */
export function errorType (error: unknown): string {
  const oauthError = (error as { oauthError?: unknown } | null)?.oauthError
  if (typeof oauthError === 'string') return oauthError
  const code = publicCode((error as { code?: unknown } | null)?.code)
  if (code) return code
  const name = error instanceof Error ? error.name : ''
  return /^[A-Za-z][\w.]{0,63}$/.test(name) && name !== 'Error' ? name : '_OTHER'
}

/**
 * Runs `work` and calls `finish` once it is over: at once, or when the promise it returned settles;
 * with the error it failed with, if it did.
 */
function whenDone<T> (work: () => T, finish: (error?: unknown) => void): T {
  let result: T
  try {
    result = work()
  } catch (error) {
    finish(error)
    throw error
  }
  if (!(result instanceof Promise)) {
    finish()
    return result
  }
  return result.then((value: unknown) => {
    finish()
    return value
  }, (error: unknown) => {
    finish(error)
    throw error
  }) as T
}

export function markFailed (span: Span, error: unknown): void {
  span.setAttribute(ATTR_ERROR_TYPE, errorType(error))
  span.setStatus({ code: SpanStatusCode.ERROR })
}

export function createGatewayTracing (tracer: Tracer): GatewayTracing {
  const contextManager = new AsyncLocalStorageContextManager().enable()
  const propagator = new W3CTraceContextPropagator()

  function parentContext (): Context | undefined {
    const active = contextManager.active()
    const deferred = active.getValue(DEFERRED_SPAN) as DeferredSpan | undefined
    if (deferred) return deferred.open()
    return trace.getSpan(active) ? active : undefined
  }

  function inSpan<T> (name: string, options: TracedCallOptions, work: () => T): T {
    const parent = parentContext()
    if (!parent) return work()
    const span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes ? { attributes: options.attributes } : {}) }, parent)
    return whenDone(() => contextManager.with(trace.setSpan(parent, span), work), (error) => {
      if (error !== undefined) markFailed(span, error)
      span.end()
    })
  }

  return {
    tracer,
    parentContext,

    startRequest (method, route, incoming) {
      const parent = incoming ? propagator.extract(ROOT_CONTEXT, incoming, defaultTextMapGetter) : ROOT_CONTEXT
      const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: method }
      if (route !== undefined) attributes[ATTR_HTTP_ROUTE] = route
      // HTTP semantic conventions: "{method} {route}", or the method alone when no route matched.
      const span = tracer.startSpan(route === undefined ? method : `${method} ${route}`, { kind: SpanKind.SERVER, attributes }, parent)
      const { traceId, spanId } = span.spanContext()
      return { span, context: trace.setSpan(parent, span), traceId, spanId }
    },

    endRequest ({ span }, statusCode, answered) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode)
      // A server's 4xx is the client's doing, not a failure of the request's handling.
      if (statusCode >= 500) {
        span.setAttribute(ATTR_ERROR_TYPE, String(statusCode))
        span.setStatus({ code: SpanStatusCode.ERROR })
      } else if (!answered) {
        span.setAttribute(ATTR_ERROR_TYPE, 'connection_closed')
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      span.end()
    },

    runIn (request, work) {
      return contextManager.with(request.context, work)
    },

    spanOnIo (name, fn) {
      return function (this: unknown, ...args) {
        const parent = contextManager.active()
        if (!trace.getSpan(parent)) return fn.apply(this, args)
        const deferred = new DeferredSpan(tracer, name, parent, performance.now())
        return whenDone(() => contextManager.with(parent.setValue(DEFERRED_SPAN, deferred), () => fn.apply(this, args)), (error) => deferred.close(error))
      }
    },

    traceCalls (target, spanName, options = {}) {
      const traced: Record<string, unknown> = { ...target as Record<string, unknown> }
      for (const [method, value] of Object.entries(target)) {
        const name = typeof value === 'function' ? spanName(method) : undefined
        if (name === undefined) continue
        const call = value as (...args: unknown[]) => unknown
        traced[method] = (...args: unknown[]) => inSpan(name, options, () => call.apply(target, args))
      }
      return traced as typeof target
    },
  }
}
