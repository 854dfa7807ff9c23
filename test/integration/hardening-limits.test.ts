/**
 * Limits and failures between the gateway and its upstreams: the body size
 * limit (declared and streamed), response timeouts, unreachable and resetting
 * upstreams (a POST is never retried), and TLS verification of https
 * upstreams. Each upstream here is a real server on a free port.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { freePort, REFUSED_PORT } from '../helpers/free-port.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'
import { TEST_ADMIN_TOKEN, type RoutePolicyJson } from '../helpers/gateway.js'
import { WHOLE_ANSWER_LIMIT } from '../../gateway/proxy/upstream-exchange.js'

const BODY_LIMIT = 1024
const TIMEOUT_MS = 300

let stack: Stack
let alice: SignedInUser
const ports = { silent: 0, reset: 0, tls: 0, partial: 0 }
let silent: TcpServer
let reset: TcpServer
let tls: HttpsServer
let partial: TcpServer
/** Requests (not connections) each hand-made upstream saw. */
const counts = { silent: 0, reset: 0, tls: 0, tlsErrors: 0 }

const anyUser = [{ methods: ['GET', 'POST'], path: '/:thing', roles: ['user'] }]

function policy (api: string): RoutePolicyJson {
  return {
    routes: [
      {
        prefix: '/api',
        upstream: api,
        allow: [
          { methods: ['POST', 'PUT'], path: '/echo/:thing', roles: ['user'] },
          { methods: ['GET'], path: '/slow', roles: ['user'] },
        ],
      },
      { prefix: '/fast', upstream: api, rewritePrefix: '', timeoutMs: TIMEOUT_MS, allow: [{ methods: ['GET'], path: '/slow', roles: ['user'] }] },
      { prefix: '/silent', upstream: `http://127.0.0.1:${ports.silent}`, timeoutMs: TIMEOUT_MS, allow: anyUser },
      { prefix: '/reset', upstream: `http://127.0.0.1:${ports.reset}`, allow: anyUser },
      { prefix: '/down', upstream: `http://127.0.0.1:${REFUSED_PORT}`, allow: anyUser },
      { prefix: '/tls', upstream: `https://127.0.0.1:${ports.tls}`, allow: anyUser },
      { prefix: '/partial', upstream: `http://127.0.0.1:${ports.partial}`, timeoutMs: TIMEOUT_MS, allow: anyUser },
    ],
  }
}

/** A TCP server that counts HTTP requests (by request line) and hands each socket to `onRequest`. */
function requestCounter (onRequest: (socket: Socket) => void, count: () => void): TcpServer {
  return createTcpServer(socket => {
    socket.on('error', () => {})
    socket.on('data', chunk => {
      const requestLines = chunk.toString('latin1').match(/^(GET|POST|PUT) \S+ HTTP\/1\.1\r$/gm) ?? []
      for (let i = 0; i < requestLines.length; i++) count()
      onRequest(socket)
    })
  })
}

/** Held answers of the partial upstream: each sent its head and part of its body, and waits to be let go. */
const held: Array<() => void> = []
/** When the partial upstream saw each `/stalled`, `/chunked` and `/headless` connection close. */
const stalledClosed: number[] = []
const chunkedClosed: number[] = []
const headlessClosed: number[] = []
const LARGE_BODY = 'z'.repeat(WHOLE_ANSWER_LIMIT * 2)
/** What `/endless` offers: more than the kernel's and the gateway's buffers on the way could hold together. */
const ENDLESS_BYTES = 256 * 1024 * 1024
/** How much of it the partial upstream managed to hand to its socket so far. */
let endlessWritten = 0

/**
 * Answers by path, a part at a time: `/broken` sends half of a small body and resets,
 * `/stalled` sends half of a small body and then nothing, `/not-modified` is a 304, `/large` (a body over the limit
 * for reading answers whole) and `/chunked` (no declared length) send their head and a
 * first part, then wait in `held`; `/headless` reads the request and sends nothing; `/early-hints` sends a
 * 103 before its 200; `/trickle` streams its body over 700 ms; `/endless` streams until backpressure
 * stops it; `/odd-status` answers with a status HTTP has no room for; `/head` answers a HEAD with the
 * length of the body a GET would get.
 */
function partialUpstream (): TcpServer {
  return createTcpServer(socket => {
    socket.on('error', () => {})
    socket.once('data', chunk => {
      const path = /^(?:GET|HEAD) (\S+) /.exec(chunk.toString('latin1'))?.[1]
      const head = (fields: string[]) => socket.write(['HTTP/1.1 200 OK', 'Content-Type: application/json', 'X-Upstream: partial', ...fields, '', ''].join('\r\n'))
      if (path === '/broken' || path === '/stalled') {
        head(['Content-Length: 40'])
        socket.write('{"orders":[')
        if (path === '/broken') setTimeout(() => socket.resetAndDestroy(), 20)
        else socket.once('close', () => stalledClosed.push(Date.now()))
      } else if (path === '/not-modified') {
        socket.end('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
      } else if (path === '/large') {
        head([`Content-Length: ${LARGE_BODY.length}`])
        socket.write(LARGE_BODY.slice(0, 1024))
        held.push(() => socket.end(LARGE_BODY.slice(1024)))
      } else if (path === '/chunked') {
        head(['Transfer-Encoding: chunked'])
        socket.write('5\r\nfirst\r\n')
        socket.once('close', () => chunkedClosed.push(Date.now()))
        held.push(() => socket.end('6\r\n,last!\r\n0\r\n\r\n'))
      } else if (path === '/headless') {
        socket.once('close', () => headlessClosed.push(Date.now()))
      } else if (path === '/early-hints') {
        socket.write('HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n')
        setTimeout(() => socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"hints":1}'), 20)
      } else if (path === '/endless') {
        // A chunked answer written as fast as the connection takes it: only backpressure slows it down.
        head(['Transfer-Encoding: chunked'])
        const piece = Buffer.alloc(64 * 1024, 'e')
        const framed = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
        const pump = () => {
          while (endlessWritten < ENDLESS_BYTES && !socket.destroyed) {
            endlessWritten += piece.length
            if (!socket.write(framed)) {
              socket.once('drain', pump)
              return
            }
          }
        }
        pump()
      } else if (path === '/trickle') {
        // A chunked answer that takes 700 ms, a part every 100 ms (each well within the route's timeout).
        head(['Transfer-Encoding: chunked'])
        let parts = 0
        const timer = setInterval(() => {
          parts += 1
          if (socket.destroyed) clearInterval(timer)
          else if (parts <= 7) socket.write(`1\r\n${parts}\r\n`)
          else {
            clearInterval(timer)
            socket.end('0\r\n\r\n')
          }
        }, 100)
      } else if (path === '/odd-status') {
        socket.end('HTTP/1.1 999 Odd\r\nContent-Type: application/json\r\nX-Upstream: partial\r\nContent-Length: 2\r\n\r\n{}')
      } else if (path === '/head') {
        socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\nETag: "h1"\r\n\r\n')
      } else {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
      }
    })
  })
}

/** Reads until `text` has arrived (or the body ended); what arrived. */
async function readUntil (reader: ReadableStreamDefaultReader<Uint8Array>, text?: string): Promise<string> {
  const decoder = new TextDecoder()
  let seen = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return seen
    seen += decoder.decode(value, { stream: true })
    if (text !== undefined && seen.includes(text)) return seen
  }
}

async function listen (server: TcpServer | HttpsServer, port: number) {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
}

async function selfSignedCertificate () {
  const dir = await mkdtemp(join(tmpdir(), 'bff-tls-'))
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ])
    return { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

beforeAll(async () => {
  for (const name of Object.keys(ports) as Array<keyof typeof ports>) ports[name] = await freePort()
  // Accepts, reads, never answers.
  silent = requestCounter(() => {}, () => { counts.silent += 1 })
  // Reads a request, then resets the connection (RST) without a byte of answer.
  reset = requestCounter(socket => socket.resetAndDestroy(), () => { counts.reset += 1 })
  tls = createHttpsServer(await selfSignedCertificate(), (_request, response) => {
    counts.tls += 1
    response.end('{}')
  })
  tls.on('tlsClientError', () => { counts.tlsErrors += 1 })
  partial = partialUpstream()
  await Promise.all([listen(silent, ports.silent), listen(reset, ports.reset), listen(tls, ports.tls), listen(partial, ports.partial)])

  stack = await startStack({ policy, gatewayEnv: { PROXY_BODY_LIMIT: String(BODY_LIMIT) } })
  alice = await signIn(stack.publicUrl)
})
afterAll(async () => {
  await stack?.close()
  for (const release of held.splice(0)) release()
  for (const server of [silent, reset, tls, partial]) {
    server?.close()
    if (server && 'closeAllConnections' in server) server.closeAllConnections()
  }
})
beforeEach(() => {
  stack.api.clear()
  counts.silent = counts.reset = counts.tls = counts.tlsErrors = 0
})

function rawPost (path: string, headers: string[], body: string) {
  const host = new URL(stack.publicUrl).host
  const head = [`POST ${path} HTTP/1.1`, `Host: ${host}`, `Cookie: ${alice.cookie}`, `X-CSRF-Token: ${alice.csrfToken}`, 'Content-Type: text/plain', ...headers]
  return rawExchange(stack.publicUrl, `${head.join('\r\n')}\r\n\r\n${body}`)
}

function chunked (body: string, chunkSize = 256): string {
  let text = ''
  for (let at = 0; at < body.length; at += chunkSize) {
    const chunk = body.slice(at, at + chunkSize)
    text += `${chunk.length.toString(16)}\r\n${chunk}\r\n`
  }
  return `${text}0\r\n\r\n`
}

describe('request body limit on proxied routes', () => {
  it.each([
    ['Content-Length one byte over', BODY_LIMIT + 1],
    ['Content-Length far over', 50 * 1024 * 1024],
    ['Content-Length beyond any real body', 10 ** 15],
  ])('%s → 413 payload_too_large before forwarding', async (_name, length) => {
    const exchange = await rawPost('/api/echo/1', [`Content-Length: ${length}`], 'x'.repeat(100))
    expect(exchange.statuses[0]).toBe(413)
    expect(firstBody(exchange)).toEqual({ error: 'payload_too_large', message: expect.any(String) })
    expect(exchange.closedByServer).toBe(true)
    expect(stack.api.received).toEqual([])
  })

  it('a chunked body is counted while it streams and cut off past the limit: 413, the upstream never gets it whole', async () => {
    const exchange = await rawPost('/api/echo/1', ['Transfer-Encoding: chunked'], chunked('y'.repeat(BODY_LIMIT * 4)))
    expect(exchange.statuses[0]).toBe(413)
    expect(firstBody(exchange)).toMatchObject({ error: 'payload_too_large' })
    expect(stack.api.received.filter(r => r.body !== undefined)).toEqual([])
  })

  it.each([
    ['a declared body at the limit', (body: string) => rawPost('/api/echo/1', [`Content-Length: ${body.length}`, 'Connection: close'], body)],
    ['a chunked body under the limit', (body: string) => rawPost('/api/echo/1', ['Transfer-Encoding: chunked', 'Connection: close'], chunked(body))],
  ])('%s is forwarded whole', async (_name, send) => {
    const body = 'z'.repeat(BODY_LIMIT)
    const exchange = await send(body)
    expect(exchange.statuses[0]).toBe(200)
    expect(stack.api.received.map(r => r.body)).toEqual([body])
  })
})

describe('upstream failures', () => {
  it('a response slower than the route\'s timeoutMs → 504 gateway_timeout', async () => {
    const response = await fetch(`${stack.publicUrl}/fast/slow?ms=3000`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(504)
    expect(await response.json()).toEqual({ error: 'gateway_timeout', message: expect.any(String) })
  })

  it('a response within the timeout passes', async () => {
    const response = await fetch(`${stack.publicUrl}/fast/slow?ms=10`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(200)
  })

  it('an upstream that accepts and never answers → 504 gateway_timeout', async () => {
    const response = await fetch(`${stack.publicUrl}/silent/x`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(504)
    expect(await response.json()).toMatchObject({ error: 'gateway_timeout' })
    expect(counts.silent).toBe(1)
  })

  it('an upstream nobody listens on → 502 bad_gateway', async () => {
    const response = await fetch(`${stack.publicUrl}/down/x`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(502)
    expect(await response.json()).toEqual({ error: 'bad_gateway', message: expect.any(String) })
  })

  it.each(['POST', 'GET'])('a %s to an upstream that resets the connection is sent once, never retried → 502', async (method) => {
    const response = await fetch(`${stack.publicUrl}/reset/x`, {
      method,
      headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrfToken, 'content-type': 'application/json' },
      ...(method === 'POST' ? { body: '{"charge":100}' } : {}),
    })
    expect(response.status).toBe(502)
    expect(await response.json()).toMatchObject({ error: 'bad_gateway' })
    // Long enough for any retry to have happened.
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(counts.reset).toBe(1)
  })

  it('a small answer whose upstream resets half-way → 502 bad_gateway, not a 200 cut short, and none of the upstream\'s headers', async () => {
    const response = await fetch(`${stack.publicUrl}/partial/broken`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(502)
    expect(await response.json()).toEqual({ error: 'bad_gateway', message: expect.any(String) })
    expect(response.headers.get('x-upstream')).toBeNull()
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('a small answer whose body stalls past the route\'s timeoutMs → 504 gateway_timeout', async () => {
    const started = Date.now()
    const response = await fetch(`${stack.publicUrl}/partial/stalled`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(504)
    expect(await response.json()).toMatchObject({ error: 'gateway_timeout' })
    expect(response.headers.get('x-upstream')).toBeNull()
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50)
  })

  it('a 304 passes with its validator and no body', async () => {
    const response = await fetch(`${stack.publicUrl}/partial/not-modified`, { headers: { cookie: alice.cookie, 'if-none-match': '"v1"' } })
    expect(response.status).toBe(304)
    expect(response.headers.get('etag')).toBe('"v1"')
    expect(await response.text()).toBe('')
  })

  it.each([
    ['while a small answer is still coming', '/partial/stalled', stalledClosed],
    ['before the upstream has answered at all', '/partial/headless', headlessClosed],
  ])('a browser that hangs up %s frees the upstream connection at once, not at the timeout', async (_when, path, closed) => {
    closed.length = 0
    const abort = new AbortController()
    const request = fetch(`${stack.publicUrl}${path}`, { headers: { cookie: alice.cookie }, signal: abort.signal })
    await new Promise(resolve => setTimeout(resolve, 100))
    const abortedAt = Date.now()
    abort.abort()
    await expect(request).rejects.toThrow()
    await vi.waitFor(() => expect(closed).toHaveLength(1), { timeout: 2000, interval: 10 })
    expect((closed[0] as number) - abortedAt).toBeLessThan(TIMEOUT_MS)
  })

  it('a browser that hangs up during a streamed answer frees the upstream connection at once', async () => {
    chunkedClosed.length = 0
    const abort = new AbortController()
    const response = await fetch(`${stack.publicUrl}/partial/chunked`, { headers: { cookie: alice.cookie }, signal: abort.signal })
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    expect(await readUntil(reader, 'first')).toBe('first')
    const abortedAt = Date.now()
    abort.abort()
    await vi.waitFor(() => expect(chunkedClosed).toHaveLength(1), { timeout: 2000, interval: 10 })
    expect((chunkedClosed[0] as number) - abortedAt).toBeLessThan(TIMEOUT_MS)
    held.splice(0)
  })

  it('a browser that stops reading a streamed answer slows the upstream down: the gateway does not buffer the answer', async () => {
    endlessWritten = 0
    const browser = connect(Number(new URL(stack.publicUrl).port), '127.0.0.1')
    browser.on('error', () => {})
    browser.write(['GET /partial/endless HTTP/1.1', `Host: ${new URL(stack.publicUrl).host}`, `Cookie: ${alice.cookie}`, '', ''].join('\r\n'))
    // The head arrives; then the browser reads nothing more.
    await new Promise<void>(resolve => browser.once('data', () => { browser.pause(); resolve() }))
    await vi.waitFor(() => expect(endlessWritten).toBeGreaterThan(0))
    // Let the upstream write for as long as it can; with backpressure it stalls once the buffers fill.
    let before = -1
    while (before !== endlessWritten) {
      before = endlessWritten
      await new Promise(resolve => setTimeout(resolve, 300))
    }
    expect(endlessWritten).toBeLessThan(ENDLESS_BYTES / 4)
    browser.destroy()
  })

  it('the upstream latency metric ends at a streamed answer\'s head, not when the browser has read it all', async () => {
    const sample = async () => {
      const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()
      const value = (name: string, le?: string) => {
        const line = text.split('\n').find(l => l.startsWith(`${name}{`) && l.includes('upstream="/partial"') && l.includes('status="200"') && (le === undefined || l.includes(`le="${le}"`)))
        return Number(line?.split(' ').at(-1) ?? 0)
      }
      return { count: value('bff_upstream_duration_seconds_count'), quick: value('bff_upstream_duration_seconds_bucket', '0.25') }
    }
    const before = await sample()
    const started = Date.now()
    const response = await fetch(`${stack.publicUrl}/partial/trickle`, { headers: { cookie: alice.cookie } })
    expect(await response.text()).toBe('1234567')
    expect(Date.now() - started).toBeGreaterThanOrEqual(600)
    await vi.waitFor(async () => {
      const after = await sample()
      expect(after.count).toBe(before.count + 1)
      expect(after.quick).toBe(before.quick + 1)
    })
  })

  it('an informational answer (103 Early Hints) is passed over: the browser gets the final answer', async () => {
    const response = await fetch(`${stack.publicUrl}/partial/early-hints`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ hints: 1 })
  })

  it('an answer with a status outside 100–599 → 502 bad_gateway, none of the upstream\'s headers', async () => {
    const response = await fetch(`${stack.publicUrl}/partial/odd-status`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(502)
    expect(await response.json()).toEqual({ error: 'bad_gateway', message: expect.any(String) })
    expect(response.headers.get('x-upstream')).toBeNull()
  })

  it('a HEAD gets the upstream\'s length and validator, and no body', async () => {
    const exchange = await rawExchange(stack.publicUrl, [
      'HEAD /partial/head HTTP/1.1', `Host: ${new URL(stack.publicUrl).host}`, `Cookie: ${alice.cookie}`, 'Connection: close', '', '',
    ].join('\r\n'))
    expect(exchange.statuses).toEqual([200])
    expect(exchange.text).toMatch(/\r\ncontent-length: 1234\r\n/i)
    expect(exchange.text).toMatch(/\r\netag: "h1"\r\n/i)
    expect(exchange.text.endsWith('\r\n\r\n')).toBe(true)
  })

  it.each([
    ['an answer larger than the whole-read limit', '/partial/large', LARGE_BODY],
    ['an answer of undeclared length (chunked: a stream of events, say)', '/partial/chunked', 'first,last!'],
  ])('%s streams: the browser has its head and first part while the upstream is still sending', async (_name, path, whole) => {
    const response = await fetch(`${stack.publicUrl}${path}`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-upstream')).toBe('partial')
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const first = await readUntil(reader, whole.slice(0, 5))
    // Only now does the upstream send the rest: had the gateway waited for the whole answer, nothing would have come.
    expect(held).toHaveLength(1)
    held.splice(0).forEach(release => release())
    expect(first + await readUntil(reader)).toBe(whole)
  })

  it('an https upstream with a certificate nobody vouches for → 502 bad_gateway, no request sent', async () => {
    const response = await fetch(`${stack.publicUrl}/tls/x`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(502)
    expect(await response.json()).toMatchObject({ error: 'bad_gateway' })
    expect(counts.tls).toBe(0)
  })
})
