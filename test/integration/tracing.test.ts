/**
 * OpenTelemetry tracing (issue 20 item 3) on the real stack: gateways with
 * the standard OTEL_* variables export to an OTLP/HTTP receiver on loopback,
 * and their spans are read back with their parent links. A signed-in API
 * call shows the server span, the upstream client span and the `traceparent`
 * the API received; a call that refreshes shows the session read and the
 * refresh below the server span. Log lines and audit events carry the
 * request id and the trace id. A `traceparent` is continued from a trusted
 * proxy only. Without an exporter variable nothing of tracing is wired.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { examplePolicy, startTestGateway, TEST_ADMIN_TOKEN, type TestGateway } from '../helpers/gateway.js'
import { freePort } from '../helpers/free-port.js'
import { captureLogLines } from '../helpers/log-lines.js'
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'

const SECRET_QUERY = 'secret-query-value'
/** A trace a proxy in front of the gateway (or a browser posing as one) claims the request belongs to. */
const INCOMING_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const INCOMING_SPAN = '00f067aa0ba902b7'
const INCOMING_TRACEPARENT = `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`

let receiver: OtlpReceiver
let stack: Stack
let user: SignedInUser
const { lines: logLines, stream: logStream } = captureLogLines()

/** Spans are sent in batches this often (OTEL_BSP_SCHEDULE_DELAY) rather than every 5 s. */
const tracingEnv = (endpoint: string) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_SERVICE_NAME: 'bff-under-test' })

beforeAll(async () => {
  receiver = await startOtlpReceiver()
  stack = await startStack({
    gatewayEnv: { ...tracingEnv(receiver.url), TRUST_PROXY: 'loopback', LOG_LEVEL: 'info' },
    deps: { logStream },
  })
  user = await signIn(stack.publicUrl)
})
afterAll(async () => {
  await stack?.close()
  await receiver?.close()
})

/** The trace and span ids of a W3C `traceparent`. */
function parseTraceparent (value: unknown): { traceId: string, spanId: string } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(value))
  if (!match) throw new Error(`not a traceparent: ${String(value)}`)
  return { traceId: match[1]!, spanId: match[2]! }
}

const named = (spans: ReceivedSpan[], name: string) => spans.filter(span => span.name === name)
const one = (spans: ReceivedSpan[], name: string) => {
  const found = named(spans, name)
  expect(found.map(span => span.name), `spans named ${name}`).toEqual([name])
  return found[0]!
}
const serverSpanOf = (spans: ReceivedSpan[]) => spans.find(span => span.kind === SPAN_KIND.SERVER)
const hasServerAndClient = (spans: ReceivedSpan[]) => serverSpanOf(spans) !== undefined && spans.some(span => span.kind === SPAN_KIND.CLIENT && span.name === 'GET')

/** The API call, and the `traceparent` the API received with it. */
async function apiCall (url: string, headers: Record<string, string> = {}, path = '/api/orders') {
  stack.api.clear()
  const response = await fetch(`${url}${path}`, { headers: { cookie: user.cookie, ...headers } })
  expect(response.status).toBe(200)
  const received = stack.api.received.at(-1)
  expect(received?.headers.traceparent).toBeDefined()
  return { received: received!, upstream: parseTraceparent(received!.headers.traceparent) }
}

describe('a signed-in API call with the session in memory and a fresh token', () => {
  it('is one trace: the server span, and below it the upstream call, whose traceparent the API received', async () => {
    const { upstream } = await apiCall(stack.publicUrl, {}, `/api/orders?q=${SECRET_QUERY}`)
    const spans = await receiver.trace(upstream.traceId, hasServerAndClient)

    const server = one(spans, 'GET /api/*')
    expect(server).toMatchObject({
      kind: SPAN_KIND.SERVER,
      parentSpanId: undefined,
      attributes: { 'http.request.method': 'GET', 'http.route': '/api/*', 'http.response.status_code': 200 },
      resource: { 'service.name': 'bff-under-test' },
    })
    const call = one(spans, 'GET')
    expect(call).toMatchObject({
      kind: SPAN_KIND.CLIENT,
      spanId: upstream.spanId,
      parentSpanId: server.spanId,
      attributes: { 'http.response.status_code': 200, 'url.full': `${stack.api.url}/orders`, 'server.port': stack.api.port },
    })
    // The session came from the in-process cache and the token needed no refresh: nothing waited on I/O.
    expect(named(spans, 'session.load')).toEqual([])
    expect(named(spans, 'token.refresh')).toEqual([])
  })
})

describe('a signed-in API call that must refresh its token first', () => {
  it('shows the session read and the refresh, each with its store and identity-provider calls, below the server span', async () => {
    // An operator asks for fresh tokens: the cached copy is dropped, and the next call refreshes.
    const asked = await fetch(`${stack.gateway.adminUrl}/admin/users/alice/refresh`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(asked.status).toBe(200)
    stack.idp.resetCounters()
    const { upstream } = await apiCall(stack.publicUrl)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    const spans = await receiver.trace(upstream.traceId, found => hasServerAndClient(found) && named(found, 'token.refresh').length === 1)

    const server = one(spans, 'GET /api/*')
    const load = one(spans, 'session.load')
    const refresh = one(spans, 'token.refresh')
    expect(load.parentSpanId).toBe(server.spanId)
    expect(refresh.parentSpanId).toBe(server.spanId)
    expect(one(spans, 'GET')).toMatchObject({ parentSpanId: server.spanId, spanId: upstream.spanId })
    // The session read went to Redis, under the session load.
    expect(named(spans, 'store.get').filter(span => span.parentSpanId === load.spanId)).toHaveLength(1)
    expect(named(spans, 'store.get')[0]?.attributes['db.system.name']).toBe('redis')
    // The refresh took the lock, asked the IdP and stored the new tokens, all under the refresh.
    expect(one(spans, 'idp.refresh')).toMatchObject({ kind: SPAN_KIND.CLIENT, parentSpanId: refresh.spanId })
    for (const name of ['store.acquireLock', 'store.replace', 'store.releaseLock']) {
      expect(named(spans, name).map(span => span.parentSpanId), name).toEqual([refresh.spanId])
    }
  })
})

describe('what a trace never holds', () => {
  it('no token, cookie, session id, CSRF token or query string in anything exported', async () => {
    const { received } = await apiCall(stack.publicUrl, {}, `/api/orders?token=${SECRET_QUERY}`)
    await receiver.trace(parseTraceparent(received.headers.traceparent).traceId, hasServerAndClient)
    const handles = (await (await user.browser.fetch(`${stack.publicUrl}/bff/sessions`)).json() as { sessions: Array<{ id: string }> }).sessions.map(s => s.id)
    const accessToken = String(received.headers.authorization).replace(/^Bearer /, '')
    const cookieValue = user.cookie.split('=').slice(1).join('=')
    const exported = receiver.bodies.join('\n')
    expect(exported.length).toBeGreaterThan(0)
    for (const secret of [accessToken, cookieValue, decodeURIComponent(cookieValue), user.csrfToken, SECRET_QUERY, ...handles]) {
      expect(secret.length).toBeGreaterThan(8)
      expect(exported).not.toContain(secret)
    }
    for (const span of receiver.spans) {
      for (const name of ['url.full', 'http.route']) expect(String(span.attributes[name] ?? '')).not.toContain('?')
    }
  })
})

describe('log lines and audit events', () => {
  it('carry the request id, and the trace id of the request they were written for', async () => {
    const { upstream } = await apiCall(stack.publicUrl)
    const spans = await receiver.trace(upstream.traceId, hasServerAndClient)
    const server = serverSpanOf(spans)!
    const access = logLines.find(line => line.msg === 'request completed' && line.trace_id === upstream.traceId)
    expect(access).toMatchObject({ reqId: expect.any(String), span_id: server.spanId, req: { path: '/api/orders' } })

    // The sign-in's audit event is written through the gateway's own logger, deep in the callback.
    const login = logLines.find(line => line.audit === 'login')
    expect(login).toMatchObject({ reqId: expect.any(String), trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) })
    const callback = await receiver.trace(String(login!.trace_id), found => serverSpanOf(found) !== undefined)
    expect(serverSpanOf(callback)?.name).toBe('GET /bff/callback')
    expect(logLines.find(line => line.msg === 'request completed' && line.trace_id === login!.trace_id)?.reqId).toBe(login!.reqId)

    // An operator's call is not traced, but its audit event names it (the admin listener's own ids).
    const asked = await fetch(`${stack.gateway.adminUrl}/admin/users/nobody-signed-in/refresh`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(asked.status).toBe(200)
    const operator = logLines.find(line => line.audit === 'refresh_requested' && line.sub === 'nobody-signed-in')
    expect(operator?.reqId).toMatch(/^admin-/)
    expect(operator?.trace_id).toBeUndefined()
  })
})

describe('an incoming traceparent', () => {
  let untrusting: TestGateway
  beforeAll(async () => {
    // The same product without TRUST_PROXY: its peers are browsers, whatever headers they send.
    untrusting = await startTestGateway({
      issuer: stack.idp.issuer,
      port: await freePort(),
      publicUrl: stack.publicUrl,
      redisUrl: stack.redis!.url,
      policy: examplePolicy(stack.api.url),
      env: tracingEnv(receiver.url),
    })
  })
  afterAll(async () => { await untrusting?.close() })

  const forwarded = { traceparent: INCOMING_TRACEPARENT, 'x-forwarded-for': '203.0.113.7' }

  it('is continued from a trusted proxy (TRUST_PROXY=loopback): the server span is its child, and the API gets the same trace', async () => {
    const { upstream } = await apiCall(stack.publicUrl, forwarded)
    expect(upstream.traceId).toBe(INCOMING_TRACE)
    const spans = await receiver.trace(INCOMING_TRACE, found => named(found, 'GET /api/*').length > 0 && named(found, 'GET').length > 0)
    const server = one(spans, 'GET /api/*')
    expect(server.parentSpanId).toBe(INCOMING_SPAN)
    expect(one(spans, 'GET').spanId).toBe(upstream.spanId)
  })

  it('is ignored from a peer that is not a trusted proxy: a new trace starts, and the API never sees the one sent', async () => {
    const { received, upstream } = await apiCall(untrusting.url, forwarded)
    expect(upstream.traceId).not.toBe(INCOMING_TRACE)
    expect(received.headers.traceparent).not.toContain(INCOMING_SPAN)
    const spans = await receiver.trace(upstream.traceId, hasServerAndClient)
    expect(serverSpanOf(spans)?.parentSpanId).toBeUndefined()
    expect(receiver.spans.some(span => span.parentSpanId === INCOMING_SPAN && span.traceId !== INCOMING_TRACE)).toBe(false)
  })
})

describe('without an OTEL exporter variable', () => {
  it('registers no tracing at all, and nothing is sent anywhere', async () => {
    const quiet = await startOtlpReceiver()
    const untraced: TestGateway[] = []
    try {
      const settings: Array<Record<string, string>> = [
        {},
        // The endpoint alone would turn tracing on; these keep it off, as the specification says.
        { OTEL_EXPORTER_OTLP_ENDPOINT: quiet.url, OTEL_TRACES_EXPORTER: 'none' },
        { OTEL_EXPORTER_OTLP_ENDPOINT: quiet.url, OTEL_SDK_DISABLED: 'true' },
      ]
      for (const env of settings) {
        const gateway = await startTestGateway({
          issuer: stack.idp.issuer,
          port: await freePort(),
          publicUrl: stack.publicUrl,
          redisUrl: stack.redis!.url,
          policy: examplePolicy(stack.api.url),
          env: { ...env, OTEL_BSP_SCHEDULE_DELAY: '50' },
        })
        untraced.push(gateway)
        expect(gateway.config.tracing).toBeUndefined()
        expect(gateway.gateway.app.hasPlugin('bff-tracing')).toBe(false)
        expect(gateway.gateway.app.tracing).toBeUndefined()
        stack.api.clear()
        expect((await fetch(`${gateway.url}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(200)
        // Nothing of ours: the browser sent no traceparent, and none was made up.
        expect(stack.api.received.at(-1)?.headers.traceparent).toBeUndefined()
      }
    } finally {
      for (const gateway of untraced) await gateway.close()
      await quiet.close()
    }
    expect(quiet.bodies).toEqual([])
  })
})
