/**
 * The gateway's spans in isolation (an in-memory exporter): which calls get a
 * span and under which parent, a session load's span only when it does I/O,
 * and what an error leaves on a span (its code, never its message).
 */
import { describe, expect, it } from 'vitest'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import { createGatewayTracing, errorType } from '../../gateway/observability/tracing.js'
import { createTracingHooks } from '../../gateway/observability/tracing-hooks.js'
import { SessionStoreUnavailable } from '../../gateway/errors.js'
import { OidcRejectedError } from '../../gateway/auth/oidc-client.js'

function tracingUnderTest () {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  const tracing = createGatewayTracing(provider.getTracer('test'))
  const hooks = createTracingHooks(tracing)
  const store = hooks.traceStore({
    kind: 'redis' as const,
    async get (handle: string) { return handle === 'known' ? { handle } : undefined },
    async touch (_handle: string) {},
  })
  /** Runs `work` as a request's handler would, then ends the request. */
  const inRequest = async <T>(work: () => T | Promise<T>) => {
    const request = tracing.startRequest('GET', '/api/*', undefined)
    const result = await tracing.runIn(request, work)
    tracing.endRequest(request, 200, true)
    return { result, request }
  }
  const spans = () => exporter.getFinishedSpans()
  const named = (name: string) => spans().filter(span => span.name === name)
  return { tracing, hooks, store, inRequest, spans, named }
}

describe('a session load', () => {
  it('answered from memory (no promise) has no span', async () => {
    const { hooks, inRequest, spans } = tracingUnderTest()
    const load = hooks.traceSessionLoad((cookie: string) => ({ cookie }))
    const { result } = await inRequest(() => load('c'))
    expect(result).toEqual({ cookie: 'c' })
    expect(spans().map(span => span.name)).toEqual(['GET /api/*'])
  })

  it('that waits without any traced I/O has none either', async () => {
    const { hooks, inRequest, spans } = tracingUnderTest()
    const load = hooks.traceSessionLoad(async () => 'verified')
    await inRequest(() => load())
    expect(spans().map(span => span.name)).toEqual(['GET /api/*'])
  })

  it('that reads the store has one, from its call to its end, with the store\'s spans below it', async () => {
    const { hooks, store, inRequest, named } = tracingUnderTest()
    const load = hooks.traceSessionLoad(async (handle: string) => {
      await new Promise(resolve => setTimeout(resolve, 5))
      const found = await store.get(handle)
      if (found) await store.touch(handle)
      return found
    })
    const { result, request } = await inRequest(() => load('known'))
    expect(result).toEqual({ handle: 'known' })
    const [span] = named('session.load')
    expect(span?.parentSpanContext?.spanId).toBe(request.spanId)
    for (const name of ['store.get', 'store.touch']) {
      expect(named(name).map(child => child.parentSpanContext?.spanId), name).toEqual([span?.spanContext().spanId])
      expect(named(name)[0]?.attributes['db.system.name']).toBe('redis')
    }
    // It started when the load was called, before the 5 ms that passed before the store was asked.
    const startedMs = (span!.startTime[0] - named('store.get')[0]!.startTime[0]) * 1000 + (span!.startTime[1] - named('store.get')[0]!.startTime[1]) / 1e6
    expect(startedMs).toBeLessThan(-3)
  })

  it('that fails is marked with the error\'s public code', async () => {
    const { hooks, tracing, inRequest, named } = tracingUnderTest()
    const failing = tracing.traceCalls({ async get () { throw new SessionStoreUnavailable({ cause: new Error('AUTH s3cret-password') }) } }, () => 'store.get')
    const load = hooks.traceSessionLoad(() => failing.get())
    await expect(inRequest(() => load())).rejects.toBeInstanceOf(SessionStoreUnavailable)
    for (const name of ['session.load', 'store.get']) {
      expect(named(name)[0]?.attributes['error.type'], name).toBe('session_store_unavailable')
      expect(named(name)[0]?.status.code, name).toBe(2)
    }
  })
})

describe('traced calls', () => {
  it('outside any request (background work, the admin listener) make no span', async () => {
    const { store, spans } = tracingUnderTest()
    expect(await store.get('known')).toEqual({ handle: 'known' })
    expect(spans()).toEqual([])
  })

  it('nest: what a token refresh calls is below the refresh', async () => {
    const { hooks, store, inRequest, named } = tracingUnderTest()
    const tokens = hooks.traceTokenRefresh({ needsRefresh: () => true, ensureFresh: async () => store.get('known') })
    await inRequest(() => tokens.ensureFresh())
    expect(named('store.get')[0]?.parentSpanContext?.spanId).toBe(named('token.refresh')[0]?.spanContext().spanId)
  })

  it('of the identity provider are client spans naming its host, except what only reads discovery', async () => {
    const { hooks, inRequest, named, spans } = tracingUnderTest()
    const idp = hooks.traceIdentityProvider({
      async ready () {},
      async refresh (_refreshToken: string) { return { accessToken: 'a' } },
    }, 'https://idp.example.com/realms/x')
    await inRequest(async () => {
      await idp.ready()
      await idp.refresh('rt-secret')
    })
    expect(named('idp.refresh')[0]?.attributes['server.address']).toBe('idp.example.com')
    expect(spans().map(span => span.name).sort()).toEqual(['GET /api/*', 'idp.refresh'])
    expect(JSON.stringify(spans().map(span => span.attributes))).not.toContain('rt-secret')
  })
})

describe('errorType', () => {
  it('is a gateway error\'s public code, an IdP\'s OAuth code or the class, never the message', () => {
    expect(errorType(new SessionStoreUnavailable())).toBe('session_store_unavailable')
    expect(errorType(new OidcRejectedError('invalid_grant'))).toBe('invalid_grant')
    expect(errorType(new TypeError('token eyJ... is bad'))).toBe('TypeError')
    expect(errorType(new Error('Bearer abc'))).toBe('_OTHER')
    expect(errorType('a string')).toBe('_OTHER')
  })
})
