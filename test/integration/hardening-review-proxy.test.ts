/**
 * Fixes from a hostile review of the proxy path (issue 15, items 1, 2, 3 and 7),
 * against real parts: the gateway with its Redis and IdP, the token-only API
 * (which records what it receives), and a plain upstream of our own that answers
 * with whichever response headers a test asks for, and reflects any Origin with
 * credentials, as a careless CORS middleware would.
 *
 * 1. Nothing the browser sends may change, at the upstream, the method or path the
 *    policy decided on: override headers are dropped, a `_method` parameter is refused.
 * 2. The gateway alone decides CORS: no upstream `Access-Control-*` header reaches the browser.
 * 3. Answers to requests admitted with a session are never stored by a shared cache.
 * 7. Underscore spellings of the headers the gateway sets or strips do not reach the upstream.
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server } from 'node:http'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { freePort } from '../helpers/free-port.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'
import type { RoutePolicyJson } from '../helpers/gateway.js'

const BODY_LIMIT = 4096
const ALLOWED_ORIGIN = 'https://admin.example.test'
const EVIL_ORIGIN = 'https://evil.example'

let stack: Stack
let alice: SignedInUser
let host: string
/** Instance 0 runs without ALLOWED_ORIGINS; instance 1 (same Redis, same IdP, same PUBLIC_URL) with it. */
let withAllowedOrigins: string

interface AnsweredRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

/**
 * The upstream behind `/answer`: answers 200 `{"ok":true}` with the response headers named (as JSON) in the
 * request's `X-Answer-Headers`, streamed without a length when `X-Answer-Streamed` is set, and reflects an
 * `Origin` in `Access-Control-*` headers with credentials.
 */
let answerUpstream: Server
let answerPort: number
const answered: AnsweredRequest[] = []

function startAnswerUpstream (): Server {
  return createServer((request: IncomingMessage, response) => {
    answered.push({ method: request.method ?? '', url: request.url ?? '', headers: { ...request.headers } })
    request.resume()
    request.on('end', () => {
      const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'x-upstream': 'answer' }
      const asked = request.headers['x-answer-headers']
      if (typeof asked === 'string') Object.assign(headers, JSON.parse(asked))
      const origin = request.headers.origin
      if (origin !== undefined) {
        Object.assign(headers, {
          'access-control-allow-origin': origin,
          'access-control-allow-credentials': 'true',
          'access-control-expose-headers': 'X-Upstream-Secret',
          'access-control-allow-methods': 'GET, POST, DELETE',
          'access-control-allow-headers': 'Authorization',
          'access-control-max-age': '86400',
          'access-control-allow-private-network': 'true',
        })
      }
      const body = '{"ok":true}'
      if (request.headers['x-answer-streamed'] === undefined) headers['content-length'] = Buffer.byteLength(body)
      response.writeHead(200, headers)
      response.end(request.method === 'HEAD' ? undefined : body)
    })
  })
}

function policy (api: string): RoutePolicyJson {
  return {
    routes: [
      // POST is allowed, DELETE is not: an override that reached the upstream would do what the policy refused.
      { prefix: '/api', upstream: api, allow: [{ methods: ['GET', 'POST'], path: '/echo/:thing', roles: ['user'] }] },
      { prefix: '/legacy', upstream: api, allowMethodParam: true, allow: [{ methods: ['GET', 'POST'], path: '/echo/:thing', roles: ['user'] }] },
      { prefix: '/live', upstream: api, websocket: true, allow: [{ methods: ['GET'], path: '/ws/echo', roles: ['user'] }] },
      { prefix: '/answer', upstream: `http://127.0.0.1:${answerPort}`, allow: [{ methods: ['GET', 'POST'], path: '/:thing', roles: ['user'] }] },
    ],
  }
}

beforeAll(async () => {
  answerPort = await freePort()
  answerUpstream = startAnswerUpstream()
  answerUpstream.listen(answerPort, '127.0.0.1')
  await once(answerUpstream, 'listening')
  stack = await startStack({ instances: 2, policy, gatewayEnv: { PROXY_BODY_LIMIT: String(BODY_LIMIT) } })
  await stack.gateways[1]!.close()
  withAllowedOrigins = (await stack.restartGateway(1, { ALLOWED_ORIGINS: ALLOWED_ORIGIN })).url
  alice = await signIn(stack.publicUrl)
  host = new URL(stack.publicUrl).host
})
afterAll(async () => {
  await stack?.close()
  answerUpstream?.closeAllConnections()
  answerUpstream?.close()
})
beforeEach(() => {
  stack.api.clear()
  answered.length = 0
})

/** One request as alice over a bare socket, every header line exactly as written. */
async function send (method: string, path: string, headers: string[] = [], body?: string) {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, `Cookie: ${alice.cookie}`, `X-CSRF-Token: ${alice.csrfToken}`, ...headers, 'Connection: close']
  const framing = body === undefined || headers.some(line => /^(content-length|transfer-encoding):/i.test(line)) ? [] : [`Content-Length: ${Buffer.byteLength(body)}`]
  const exchange = await rawExchange(stack.publicUrl, `${[...lines, ...framing].join('\r\n')}\r\n\r\n${body ?? ''}`)
  return { status: exchange.statuses[0], body: firstBody(exchange) as Record<string, unknown> }
}

function chunked (body: string, chunkSize = 7): string {
  let text = ''
  for (let at = 0; at < body.length; at += chunkSize) {
    const chunk = body.slice(at, at + chunkSize)
    text += `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`
  }
  return `${text}0\r\n\r\n`
}

function onlyUpstreamRequest () {
  expect(stack.api.received).toHaveLength(1)
  return stack.api.received[0]!
}

/** Refused before anything reached the upstream whole: a streamed body may have begun to go, but never ended. */
function expectRefusedNothingForwarded (response: { status: number | undefined, body: Record<string, unknown> }) {
  expect(response.status).toBe(400)
  expect(response.body).toEqual({ error: 'invalid_request', message: expect.stringContaining('_method') })
  expect(stack.api.received.filter(r => r.body !== undefined)).toEqual([])
}

describe('1. method and URL overrides', () => {
  it('the policy refuses DELETE on /api/echo/:thing (what an override would turn a POST into)', async () => {
    const response = await send('DELETE', '/api/echo/7')
    expect(response.status).toBe(403)
    expect(stack.api.received).toEqual([])
  })

  it.each([
    'X-HTTP-Method-Override: DELETE',
    'X-HTTP-Method: DELETE',
    'X-Method-Override: DELETE',
    'X-Original-Method: DELETE',
    'X-Original-URL: /admin/users/7',
    'X-Rewrite-URL: /admin/users/7',
    'X-Override-URL: /admin/users/7',
    'x-http-method-override: delete',
  ])('%s on an allowed POST does not reach the upstream', async (line) => {
    const response = await send('POST', '/api/echo/7', [line, 'Content-Type: application/json'], '{"item":1}')
    expect(response.status).toBe(200)
    const received = onlyUpstreamRequest()
    expect(received.method).toBe('POST')
    expect(received.url).toBe('/echo/7')
    expect(received.headers[line.slice(0, line.indexOf(':')).toLowerCase()]).toBeUndefined()
  })

  describe('a _method parameter in the query string', () => {
    it.each([
      ['POST', '/api/echo/7?_method=DELETE'],
      ['GET', '/api/echo/7?_method=DELETE'],
      ['POST', '/api/echo/7?%5Fmethod=DELETE'],
      ['POST', '/api/echo/7?%5fMETHOD=delete'],
      ['POST', '/api/echo/7?page=2&_Method=DELETE'],
      ['POST', '/api/echo/7?page=2;_method=DELETE'],
      ['POST', '/api/echo/7?_method%5B%5D=DELETE'],
      ['POST', '/api/echo/7?_method'],
    ])('%s %s → 400 invalid_request, nothing forwarded', async (method, path) => {
      const response = await send(method, path, ['Content-Type: application/json'], '{}')
      expectRefusedNothingForwarded(response)
      expect(stack.api.received).toEqual([])
    })

    it.each([
      '/api/echo/7?method=DELETE',
      '/api/echo/7?x_method=DELETE',
      '/api/echo/7?_methods=1',
      '/api/echo/7?q=_method',
      '/api/echo/7?note=%5Fmethod',
    ])('%s is not one: forwarded as sent', async (path) => {
      const response = await send('POST', path, ['Content-Type: application/json'], '{}')
      expect(response.status).toBe(200)
      expect(onlyUpstreamRequest().url).toBe(path.slice('/api'.length))
    })

    it('passes on a route whose policy allows it', async () => {
      const response = await send('POST', '/legacy/echo/7?_method=DELETE', ['Content-Type: application/json'], '{}')
      expect(response.status).toBe(200)
      expect(onlyUpstreamRequest().url).toBe('/echo/7?_method=DELETE')
    })

    it('refuses a WebSocket handshake too, before it reaches the upstream', async () => {
      const socket = new WebSocket(`${stack.publicUrl.replace(/^http/, 'ws')}/live/ws/echo?_method=DELETE`, {
        headers: { cookie: alice.cookie, origin: stack.publicUrl },
      })
      const status = await new Promise<number>((resolve, reject) => {
        socket.once('unexpected-response', (_request, response: IncomingMessage) => resolve(response.statusCode ?? 0))
        socket.once('open', () => resolve(101))
        socket.once('error', reject)
      })
      socket.terminate()
      expect(status).toBe(400)
      expect(stack.api.received).toEqual([])
    })
  })

  describe('a _method parameter in a form body (application/x-www-form-urlencoded)', () => {
    it.each([
      ['plain', ['Content-Type: application/x-www-form-urlencoded'], 'item=1&_method=DELETE'],
      ['percent-encoded', ['Content-Type: application/x-www-form-urlencoded'], 'item=1&%5Fmethod=DELETE'],
      ['in capitals, with a charset', ['Content-Type: Application/X-WWW-Form-Urlencoded; charset=UTF-8'], '_METHOD=delete'],
      ['as an array', ['Content-Type: application/x-www-form-urlencoded'], '_method[]=DELETE'],
      ['in a chunked body', ['Content-Type: application/x-www-form-urlencoded', 'Transfer-Encoding: chunked'], chunked('item=1&note=long+enough+to+span+chunks&_method=DELETE')],
      // Rack parses the body of a POST without Content-Type as a form.
      ['without a Content-Type', [], '_method=DELETE'],
    ])('%s → 400 invalid_request, nothing forwarded', async (_name, headers, body) => {
      expectRefusedNothingForwarded(await send('POST', '/api/echo/7', headers, body))
      expect(stack.api.received).toEqual([])
    })

    const form = 'item=1&note=%5F+caf%C3%A9&method=x&x_method=y'
    it.each([
      ['with a Content-Length', [`Content-Length: ${form.length}`], form],
      ['chunked', ['Transfer-Encoding: chunked'], chunked(form)],
    ])('a form without one is forwarded byte for byte (%s)', async (_name, framing, body) => {
      const response = await send('POST', '/api/echo/7', ['Content-Type: application/x-www-form-urlencoded', ...framing], body)
      expect(response.status).toBe(200)
      const received = onlyUpstreamRequest()
      expect(received.body).toBe(form)
      expect(received.headers['content-length']).toBe(String(form.length))
    })

    it('a form over the body limit still gets 413 payload_too_large, nothing forwarded', async () => {
      const body = `item=${'x'.repeat(BODY_LIMIT)}`
      const response = await send('POST', '/api/echo/7', ['Content-Type: application/x-www-form-urlencoded', 'Transfer-Encoding: chunked'], chunked(body, 512))
      expect(response.status).toBe(413)
      expect(response.body).toMatchObject({ error: 'payload_too_large' })
      expect(stack.api.received).toEqual([])
    })

    it('passes on a route whose policy allows it', async () => {
      const response = await send('POST', '/legacy/echo/7', ['Content-Type: application/x-www-form-urlencoded'], 'item=1&_method=DELETE')
      expect(response.status).toBe(200)
      expect(onlyUpstreamRequest().body).toBe('item=1&_method=DELETE')
    })
  })

  describe('a part named _method in a multipart body', () => {
    const BOUNDARY = '----WebKitFormBoundary7MA4YWxkTrZu0gW'
    const multipartType = `Content-Type: multipart/form-data; boundary=${BOUNDARY}`
    const part = (disposition: string, value: string, extra: string[] = []) =>
      [`--${BOUNDARY}`, `Content-Disposition: ${disposition}`, ...extra, '', value].join('\r\n') + '\r\n'
    const multipart = (...parts: string[]) => parts.join('') + `--${BOUNDARY}--\r\n`
    const upload = part('form-data; name="file"; filename="_method.txt"', 'name="_method"\r\nnot a header, file content', ['Content-Type: text/plain'])

    it('sent by fetch with FormData → 400 invalid_request, the upstream never gets the body', async () => {
      const form = new FormData()
      form.append('item', '1')
      form.append('_method', 'DELETE')
      const response = await fetch(`${stack.publicUrl}/api/echo/7`, {
        method: 'POST', body: form, headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrfToken },
      })
      expectRefusedNothingForwarded({ status: response.status, body: await response.json() as Record<string, unknown> })
    })

    it.each([
      ['after a file', multipart(upload, part('form-data; name="_method"', 'DELETE'))],
      ['with its name unquoted', multipart(part('form-data; name=_method', 'DELETE'))],
      ['named in capitals', multipart(part('form-data; name="_METHOD"', 'DELETE'))],
      ['named with RFC 5987', multipart(part("form-data; name*=utf-8''%5Fmethod", 'DELETE'))],
    ])('%s → 400 invalid_request, the upstream never gets the body', async (_name, body) => {
      expectRefusedNothingForwarded(await send('POST', '/api/echo/7', [multipartType], body))
    })

    it('in a chunked body → 400 invalid_request, the upstream never gets the body', async () => {
      const body = multipart(upload, part('form-data; name="_method"', 'DELETE'))
      expectRefusedNothingForwarded(await send('POST', '/api/echo/7', [multipartType, 'Transfer-Encoding: chunked'], chunked(body, 5)))
    })

    it('a multipart body without one is forwarded byte for byte, even a file that mentions it', async () => {
      const body = multipart(part('form-data; name="item"', '1'), upload)
      const response = await send('POST', '/api/echo/7', [multipartType], body)
      expect(response.status).toBe(200)
      expect(onlyUpstreamRequest().body).toBe(body)
    })

    it('a boundary that parsers could read two ways → 400 invalid_request, nothing forwarded', async () => {
      const response = await send('POST', '/api/echo/7', [`${multipartType}; boundary=other`], multipart(part('form-data; name="item"', '1')))
      expect(response.status).toBe(400)
      expect(response.body).toMatchObject({ error: 'invalid_request' })
      expect(stack.api.received).toEqual([])
    })

    it('passes on a route whose policy allows it', async () => {
      const body = multipart(part('form-data; name="_method"', 'DELETE'))
      const response = await send('POST', '/legacy/echo/7', [multipartType], body)
      expect(response.status).toBe(200)
      expect(onlyUpstreamRequest().body).toBe(body)
    })
  })
})

describe('2. the upstream\'s CORS headers', () => {
  function accessControl (response: Response): Record<string, string> {
    const found: Record<string, string> = {}
    response.headers.forEach((value, name) => { if (name.startsWith('access-control-')) found[name] = value })
    return found
  }

  const asAlice = (origin: string) => ({ cookie: alice.cookie, origin })

  it.each([EVIL_ORIGIN, 'null'])('never reach the browser without ALLOWED_ORIGINS, whatever the Origin (%s)', async (origin) => {
    const response = await fetch(`${stack.publicUrl}/answer/x`, { headers: asAlice(origin) })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ok: true })
    expect(answered).toHaveLength(1)
    expect(accessControl(response)).toEqual({})
  })

  it('never reach the browser on a streamed answer either', async () => {
    const response = await fetch(`${stack.publicUrl}/answer/x`, { headers: { ...asAlice(EVIL_ORIGIN), 'x-answer-streamed': '1' } })
    expect(response.headers.get('content-length')).toBeNull()
    expect(await response.json()).toEqual({ ok: true })
    expect(accessControl(response)).toEqual({})
  })

  it('with ALLOWED_ORIGINS: an origin not in it gets none', async () => {
    const response = await fetch(`${withAllowedOrigins}/answer/x`, { headers: asAlice(EVIL_ORIGIN) })
    expect(response.status).toBe(200)
    expect(accessControl(response)).toEqual({})
  })

  it('with ALLOWED_ORIGINS: an allowed origin gets the gateway\'s own CORS headers and nothing of the upstream\'s', async () => {
    const own = await fetch(`${withAllowedOrigins}/bff/user`, { headers: asAlice(ALLOWED_ORIGIN) })
    expect(own.status).toBe(200)
    expect(accessControl(own)['access-control-allow-origin']).toBe(ALLOWED_ORIGIN)

    const response = await fetch(`${withAllowedOrigins}/answer/x`, {
      headers: { ...asAlice(ALLOWED_ORIGIN), 'x-answer-headers': JSON.stringify({ vary: 'Accept-Encoding' }) },
    })
    expect(response.status).toBe(200)
    expect(answered).toHaveLength(1)
    expect(accessControl(response)).toEqual(accessControl(own))
    // The gateway's `Vary: Origin` stays beside the upstream's own Vary.
    const vary = (response.headers.get('vary') ?? '').toLowerCase().split(/\s*,\s*/)
    expect(vary).toEqual(expect.arrayContaining(['origin', 'accept-encoding']))
  })
})

describe('3. answers to requests with a session, and shared caches', () => {
  async function answer (upstreamHeaders: Record<string, string>, extra: Record<string, string> = {}) {
    const response = await fetch(`${stack.publicUrl}/answer/x`, {
      headers: { cookie: alice.cookie, 'x-answer-headers': JSON.stringify(upstreamHeaders), ...extra },
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ok: true })
    expect(answered).toHaveLength(1)
    return response
  }

  it.each([
    ['nothing', 'no-store', undefined],
    ['public, max-age=600', 'private, max-age=600', 'public, max-age=600'],
    ['s-maxage and proxy-revalidate', 'private, max-age=60', 'max-age=60, s-maxage=3600, proxy-revalidate'],
    ['no-store', 'private, no-store', 'no-store'],
    ['no-cache, must-revalidate', 'private, no-cache, must-revalidate', 'no-cache, must-revalidate'],
    ['private for one field only', 'private, max-age=60', 'private="set-cookie", max-age=60'],
    ['capitals and odd spacing', 'private, max-age=60', ' Public ,max-age=60 ,  S-MaxAge = 99'],
  ])('the upstream said %s → Cache-Control: %s', async (_name, expected, upstream) => {
    const response = await answer(upstream === undefined ? {} : { 'cache-control': upstream })
    expect(response.headers.get('cache-control')).toBe(expected)
  })

  it('a streamed answer is made private too', async () => {
    const response = await answer({ 'cache-control': 'public, max-age=600' }, { 'x-answer-streamed': '1' })
    expect(response.headers.get('content-length')).toBeNull()
    expect(response.headers.get('cache-control')).toBe('private, max-age=600')
  })

  it('headers that tell a CDN to cache, or tag what it cached, never reach the browser; the rest do', async () => {
    const response = await answer({
      'cache-control': 'max-age=60',
      'cdn-cache-control': 'max-age=3600',
      'cloudflare-cdn-cache-control': 'max-age=3600',
      'surrogate-control': 'max-age=3600',
      'surrogate-key': 'orders user-alice',
      'cache-tag': 'user-alice',
      'edge-control': 'cache-maxage=3600',
      'x-accel-expires': '3600',
      etag: '"v1"',
    })
    for (const name of ['cdn-cache-control', 'cloudflare-cdn-cache-control', 'surrogate-control', 'surrogate-key', 'cache-tag', 'edge-control', 'x-accel-expires']) {
      expect(response.headers.get(name), name).toBeNull()
    }
    expect(response.headers.get('cache-control')).toBe('private, max-age=60')
    expect(response.headers.get('etag')).toBe('"v1"')
    expect(response.headers.get('x-upstream')).toBe('answer')
  })
})

describe('7. underscore spellings of forwarding and credential headers', () => {
  const names = [
    'X_Forwarded_For', 'X-Forwarded_For', 'X_Forwarded_Host', 'X-Forwarded_Host', 'X_Forwarded_Proto', 'X_Forwarded_Prefix',
    'X_Real_IP', 'X_CSRF_Token', 'Proxy_Authorization', 'Proxy_Connection', 'Keep_Alive', 'Transfer_Encoding', 'HTTP2_Settings',
    'X_HTTP_Method_Override', 'X_HTTP_Method', 'X_Method_Override', 'X_Original_Method', 'X_Original_URL', 'X_Rewrite_URL', 'X_Override_URL',
  ]

  it.each(names)('%s from the browser does not reach the upstream', async (name) => {
    const response = await send('GET', '/api/echo/7', [`${name}: 6.6.6.6`])
    expect(response.status).toBe(200)
    const received = onlyUpstreamRequest()
    expect(received.headers[name.toLowerCase()]).toBeUndefined()
    expect(received.headers['x-forwarded-for']).toBe('127.0.0.1')
  })

  it('a header of the browser\'s own with an underscore passes', async () => {
    const response = await send('GET', '/api/echo/7', ['X_Request_Name: orders'])
    expect(response.status).toBe(200)
    expect(onlyUpstreamRequest().headers.x_request_name).toBe('orders')
  })

  it('a WebSocket handshake carries none of them, nor the override headers', async () => {
    const socket = new WebSocket(`${stack.publicUrl.replace(/^http/, 'ws')}/live/ws/echo`, {
      headers: { cookie: alice.cookie, origin: stack.publicUrl, 'X-HTTP-Method-Override': 'DELETE', X_Forwarded_For: '6.6.6.6', X_Original_URL: '/admin' },
    })
    await once(socket, 'message')
    socket.close()
    const handshake = onlyUpstreamRequest()
    expect(handshake.headers.authorization).toMatch(/^Bearer eyJ/)
    for (const name of ['x-http-method-override', 'x_forwarded_for', 'x_original_url']) expect(handshake.headers[name], name).toBeUndefined()
  })
})
