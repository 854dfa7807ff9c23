/**
 * HTTP-level attacks over a bare socket: request smuggling through
 * conflicting framing headers, CR/LF and NUL in header values, oversized
 * headers, pipelining. The gateway either refuses (400/431, JSON, connection
 * closed) or reads the bytes as exactly the requests they are; in no case does
 * the upstream see a request the gateway did not authorise.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'
import { echoPolicy } from '../helpers/gateway.js'

let stack: Stack
let alice: SignedInUser
let host: string

const policy = echoPolicy(['GET', 'POST'])

beforeAll(async () => {
  stack = await startStack({ policy })
  alice = await signIn(stack.publicUrl)
  host = new URL(stack.publicUrl).host
})
afterAll(async () => { await stack?.close() })
beforeEach(() => { stack.api.clear() })

/** A request head with alice's credentials; `lines` go between them and the blank line. */
function head (requestLine: string, lines: string[]): string {
  return [requestLine, `Host: ${host}`, `Cookie: ${alice.cookie}`, `X-CSRF-Token: ${alice.csrfToken}`, ...lines].join('\r\n') + '\r\n\r\n'
}

// What a smuggler hopes the upstream will read as a second request.
const SMUGGLED = `GET /admin/users HTTP/1.1\r\nHost: ${'x'}\r\n\r\n`

type Row = [name: string, bytes: () => string, expected: 400 | 431]

const refused: Row[] = [
  ['Content-Length and Transfer-Encoding: chunked', () => head('POST /api/echo/1 HTTP/1.1', ['Content-Length: 5', 'Transfer-Encoding: chunked']) + `0\r\n\r\n${SMUGGLED}`, 400],
  ['Transfer-Encoding: chunked before Content-Length', () => head('POST /api/echo/1 HTTP/1.1', ['Transfer-Encoding: chunked', 'Content-Length: 60']) + `0\r\n\r\n${SMUGGLED}`, 400],
  ['two different Content-Lengths', () => head('POST /api/echo/1 HTTP/1.1', ['Content-Length: 5', 'Content-Length: 60']) + `hello${SMUGGLED}`, 400],
  ['a Content-Length list', () => head('POST /api/echo/1 HTTP/1.1', ['Content-Length: 5, 60']) + `hello${SMUGGLED}`, 400],
  ['a signed Content-Length', () => head('POST /api/echo/1 HTTP/1.1', ['Content-Length: +5']) + `hello${SMUGGLED}`, 400],
  ['a non-numeric Content-Length', () => head('POST /api/echo/1 HTTP/1.1', ['Content-Length: 5a']) + `hello${SMUGGLED}`, 400],
  ['Transfer-Encoding: chunked, then identity', () => head('POST /api/echo/1 HTTP/1.1', ['Transfer-Encoding: chunked, identity', 'Content-Length: 5']) + `0\r\n\r\n${SMUGGLED}`, 400],
  ['Transfer-Encoding with a space before the colon', () => head('POST /api/echo/1 HTTP/1.1', ['Transfer-Encoding : chunked', 'Content-Length: 5']) + `0\r\n\r\n${SMUGGLED}`, 400],
  ['a chunk size that overflows', () => head('POST /api/echo/1 HTTP/1.1', ['Transfer-Encoding: chunked']) + 'ffffffffffffffffffff\r\nx\r\n0\r\n\r\n', 400],
  ['a chunk size that is not hex', () => head('POST /api/echo/1 HTTP/1.1', ['Transfer-Encoding: chunked']) + 'zz\r\nx\r\n0\r\n\r\n', 400],
  ['a bare CR inside a header value', () => head('GET /api/orders HTTP/1.1', ['X-Note: a\rX-Injected: 1']), 400],
  ['a NUL inside a header value', () => head('GET /api/orders HTTP/1.1', ['X-Note: a\0b']), 400],
  ['a header name with a space', () => head('GET /api/orders HTTP/1.1', ['X Forwarded For: 6.6.6.6']), 400],
  ['a header line without a colon', () => head('GET /api/orders HTTP/1.1', ['X-Note']), 400],
  ['an obsolete folded header line', () => head('GET /api/orders HTTP/1.1', ['X-Note: a', ' X-Injected: 1']), 400],
  ['a space inside the request target', () => head('GET /api/orders /admin HTTP/1.1', []), 400],
  ['an unknown HTTP version', () => head('GET /api/orders HTTP/1.7', []), 400],
  ['one 20 KiB header', () => head('GET /api/orders HTTP/1.1', [`X-Big: ${'b'.repeat(20 * 1024)}`]), 431],
  ['many headers adding up to 32 KiB', () => head('GET /api/orders HTTP/1.1', Array.from({ length: 64 }, (_, i) => `X-H${i}: ${'h'.repeat(500)}`)), 431],
  ['a 20 KiB cookie', () => head('GET /api/orders HTTP/1.1', [`Cookie: pad=${'c'.repeat(20 * 1024)}`]), 431],
  ['a 20 KiB request target', () => head(`GET /api/orders?q=${'q'.repeat(20 * 1024)} HTTP/1.1`, []), 431],
]

describe('requests the HTTP parser refuses', () => {
  it.each(refused)('%s → %i, JSON, connection closed, nothing upstream', async (_name, bytes, status) => {
    const exchange = await rawExchange(stack.publicUrl, bytes())
    expect(exchange.statuses).toEqual([status])
    expect(firstBody(exchange)).toEqual({ error: status === 431 ? 'headers_too_large' : 'invalid_request', message: expect.stringMatching(/^[A-Z][^%]+$/) })
    expect(exchange.closedByServer).toBe(true)
    expect(stack.api.received).toEqual([])
  })
})

describe('requests read as exactly what they are', () => {
  it('pipelined requests are separate requests: the allowed one is forwarded, the forbidden one is not', async () => {
    const bytes = head('GET /api/orders HTTP/1.1', []) + head('GET /api/admin/users HTTP/1.1', ['Connection: close'])
    const exchange = await rawExchange(stack.publicUrl, bytes)
    expect(exchange.statuses).toEqual([200, 403])
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['GET /orders'])
  })

  it('a chunked body carrying a request is a body, not a second request', async () => {
    const body = `I'm a body\r\n${SMUGGLED}`
    const bytes = head('POST /api/echo/1 HTTP/1.1', ['Transfer-Encoding: chunked', 'Content-Type: text/plain', 'Connection: close']) +
      `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
    const exchange = await rawExchange(stack.publicUrl, bytes)
    expect(exchange.statuses).toEqual([200])
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['POST /echo/1'])
    expect(stack.api.received[0]!.body).toBe(body)
  })

  it('a GET with a chunked body smuggling a request: the body is not forwarded, and is no request', async () => {
    const bytes = head('GET /api/orders HTTP/1.1', ['Transfer-Encoding: chunked']) +
      `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n` + head('GET /api/orders HTTP/1.1', ['Connection: close'])
    const exchange = await rawExchange(stack.publicUrl, bytes)
    expect(exchange.statuses).toEqual([200, 200])
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['GET /orders', 'GET /orders'])
  })

  it('a POST without Content-Type still carries its body to the upstream, unchanged', async () => {
    const exchange = await rawExchange(stack.publicUrl, head('POST /api/echo/1 HTTP/1.1', ['Content-Length: 5', 'Connection: close']) + 'hello')
    expect(exchange.statuses).toEqual([200])
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['POST /echo/1'])
    expect(stack.api.received[0]!.headers['content-length']).toBe('5')
    expect(stack.api.received[0]!.body).toBe('hello')
  })

  it('a POST with Content-Length followed by more bytes: the extra bytes are the next request, checked like any other', async () => {
    const bytes = head('POST /api/echo/1 HTTP/1.1', ['Content-Length: 5', 'Content-Type: text/plain']) + 'hello' +
      `GET /api/admin/users HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`
    const exchange = await rawExchange(stack.publicUrl, bytes)
    expect(exchange.statuses).toEqual([200, 401])
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['POST /echo/1'])
  })

  it('two Host headers: the upstream gets its own Host', async () => {
    const exchange = await rawExchange(stack.publicUrl, head('GET /api/orders HTTP/1.1', ['Host: evil.example', 'Connection: close']))
    expect(exchange.statuses[0]).toBeDefined()
    for (const request of stack.api.received) expect(request.headers.host).toBe(new URL(stack.api.url).host)
  })
})
