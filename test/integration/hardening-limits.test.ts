/**
 * Limits and failures between the gateway and its upstreams: the body size
 * limit (declared and streamed), response timeouts, unreachable and resetting
 * upstreams (a POST is never retried), and TLS verification of https
 * upstreams. Each upstream here is a real server on a free port.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { freePort, REFUSED_PORT } from '../helpers/free-port.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'
import type { RoutePolicyJson } from '../helpers/gateway.js'

const BODY_LIMIT = 1024
const TIMEOUT_MS = 300

let stack: Stack
let alice: SignedInUser
const ports = { silent: 0, reset: 0, tls: 0 }
let silent: TcpServer
let reset: TcpServer
let tls: HttpsServer
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
  await Promise.all([listen(silent, ports.silent), listen(reset, ports.reset), listen(tls, ports.tls)])

  stack = await startStack({ policy, gatewayEnv: { PROXY_BODY_LIMIT: String(BODY_LIMIT) } })
  alice = await signIn(stack.publicUrl)
})
afterAll(async () => {
  await stack?.close()
  for (const server of [silent, reset, tls]) {
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

  it('an https upstream with a certificate nobody vouches for → 502 bad_gateway, no request sent', async () => {
    const response = await fetch(`${stack.publicUrl}/tls/x`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(502)
    expect(await response.json()).toMatchObject({ error: 'bad_gateway' })
    expect(counts.tls).toBe(0)
  })
})
