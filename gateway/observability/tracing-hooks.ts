/**
 * How the gateway's resources get their spans, each at its own boundary and
 * each by one call where the resource is created: the session store's
 * operations, the identity provider's calls, the token refresh, a session
 * load that does I/O, and the upstream call. Span names and attributes are
 * chosen here, so the plugins that use these know nothing of OpenTelemetry.
 */
import { SpanKind } from '@opentelemetry/api'
import { ATTR_DB_SYSTEM_NAME, ATTR_SERVER_ADDRESS } from '@opentelemetry/semantic-conventions'
import type { Dispatcher } from 'undici'
import type { GatewayTracing } from './tracing.js'
import { upstreamTracingInterceptor } from './upstream-tracing.js'

// Identity-provider methods that only read what discovery already fetched: no call worth a span.
const LOCAL_IDP_METHODS = new Set(['ready', 'jwksUri', 'endSessionUrl', 'newLoginChallenge'])

export interface TracingHooks {
  /** The session store, a span per operation (`store.get`, `store.acquireLock`, …). */
  traceStore<T extends { readonly kind: string }> (store: T): T
  /** The identity-provider client, a client span per call that reaches the IdP (`idp.refresh`, …). */
  traceIdentityProvider<T extends object> (client: T, issuer: string): T
  /** The token refresher, a `token.refresh` span around each wait for fresh tokens. */
  traceTokenRefresh<T extends { ensureFresh: unknown }> (tokens: T): T
  /** `loadSession`, with a `session.load` span when it reads or writes the store (none from the cache). */
  traceSessionLoad<A extends unknown[], R> (load: (...args: A) => R): (...args: A) => R
  /** The proxy's dispatcher, a client span and a `traceparent` per upstream request. */
  traceUpstream (dispatcher: Dispatcher): Dispatcher
}

export function createTracingHooks (tracing: GatewayTracing): TracingHooks {
  const upstreamInterceptor = upstreamTracingInterceptor(tracing)
  return {
    traceStore (store) {
      // The memory store answers in process: its operations are no calls to anything.
      const options = store.kind === 'redis' ? { kind: SpanKind.CLIENT, attributes: { [ATTR_DB_SYSTEM_NAME]: 'redis' } } : {}
      return tracing.traceCalls(store, (method) => `store.${method}`, options)
    },
    traceIdentityProvider (client, issuer) {
      return tracing.traceCalls(client, (method) => LOCAL_IDP_METHODS.has(method) ? undefined : `idp.${method}`, {
        kind: SpanKind.CLIENT,
        attributes: { [ATTR_SERVER_ADDRESS]: new URL(issuer).hostname },
      })
    },
    traceTokenRefresh (tokens) {
      return tracing.traceCalls(tokens, (method) => method === 'ensureFresh' ? 'token.refresh' : undefined)
    },
    traceSessionLoad (load) {
      return tracing.spanOnIo('session.load', load)
    },
    traceUpstream (dispatcher) {
      return dispatcher.compose(upstreamInterceptor)
    },
  }
}
