/**
 * Header hygiene both ways (the upstream never sees the browser's credentials,
 * spoofed forwarding headers or hop-by-hop headers; the browser never sees the
 * upstream's cookies), the gateway's own security headers, and CORS closed to
 * everyone but ALLOWED_ORIGINS. Requests go over a bare socket so that every
 * header is sent exactly as written.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'
import { echoPolicy } from '../helpers/gateway.js'

const ALLOWED_ORIGIN = 'https://admin.example.test'

let stack: Stack
let alice: SignedInUser
let host: string

const policy = echoPolicy(['GET', 'POST'])

beforeAll(async () => {
  stack = await startStack({ policy, gatewayEnv: { ALLOWED_ORIGINS: ALLOWED_ORIGIN } })
  alice = await signIn(stack.publicUrl)
  host = new URL(stack.publicUrl).host
})
afterAll(async () => { await stack?.close() })
beforeEach(() => { stack.api.clear() })

/** GET /api/echo/1 as alice with extra raw header lines. */
async function echo (extraHeaders: string[]) {
  const head = ['GET /api/echo/1 HTTP/1.1', `Host: ${host}`, `Cookie: ${alice.cookie}`, ...extraHeaders, 'Connection: close']
  // A client-supplied Connection header replaces ours when the row sends one.
  const lines = extraHeaders.some(line => /^connection:/i.test(line)) ? head.slice(0, -1) : head
  const exchange = await rawExchange(stack.publicUrl, `${lines.join('\r\n')}\r\n\r\n`)
  return { status: exchange.statuses[0], body: firstBody(exchange) as Record<string, unknown>, text: exchange.text }
}

function upstreamHeaders () {
  expect(stack.api.received).toHaveLength(1)
  return stack.api.received[0]!.headers
}

type Row = [name: string, lines: string[], check: (headers: Record<string, string | string[] | undefined>) => void]

const absent = (...names: string[]) => (headers: Record<string, string | string[] | undefined>) => {
  for (const name of names) expect(headers[name], name).toBeUndefined()
}
const gatewayAuthorization = (headers: Record<string, string | string[] | undefined>) => {
  expect(headers.authorization).toMatch(/^Bearer eyJ/)
}

const rows: Row[] = [
  ['Cookie', ['Cookie: other=1'], absent('cookie')],
  ['Authorization', ['Authorization: Bearer browser-supplied'], (h) => { gatewayAuthorization(h); expect(h.authorization).not.toContain('browser-supplied') }],
  ['Authorization: Basic', ['Authorization: Basic YWxpY2U6cHc='], (h) => { gatewayAuthorization(h) }],
  ['X-CSRF-Token', [`X-CSRF-Token: ${'t'.repeat(43)}`], absent('x-csrf-token')],
  ['X-Forwarded-For', ['X-Forwarded-For: 6.6.6.6'], (h) => expect(h['x-forwarded-for']).toBe('127.0.0.1')],
  ['X-Forwarded-For twice', ['X-Forwarded-For: 6.6.6.6', 'X-Forwarded-For: 7.7.7.7'], (h) => expect(h['x-forwarded-for']).toBe('127.0.0.1')],
  ['X-Forwarded-Host', ['X-Forwarded-Host: evil.example'], (h) => expect(h['x-forwarded-host']).toBe(host)],
  ['X-Forwarded-Proto', ['X-Forwarded-Proto: https'], (h) => expect(h['x-forwarded-proto']).toBe('http')],
  ['X-Forwarded-Port', ['X-Forwarded-Port: 443'], absent('x-forwarded-port')],
  ['X-Forwarded-Prefix', ['X-Forwarded-Prefix: /admin'], absent('x-forwarded-prefix')],
  ['X-Forwarded-User', ['X-Forwarded-User: admin'], absent('x-forwarded-user')],
  ['X-Forwarded-Server', ['X-Forwarded-Server: internal'], absent('x-forwarded-server')],
  ['Forwarded', ['Forwarded: for=6.6.6.6;proto=https;host=evil.example'], absent('forwarded')],
  ['X-Real-IP', ['X-Real-IP: 6.6.6.6'], absent('x-real-ip')],
  // The upstream connection's own Connection header is the gateway's HTTP client's business.
  ['Connection', ['Connection: close, X-Marker'], (h) => expect(String(h.connection)).not.toMatch(/close|x-marker/i)],
  ['Keep-Alive', ['Keep-Alive: timeout=600'], absent('keep-alive')],
  ['TE', ['TE: trailers'], absent('te')],
  ['Trailer', ['Trailer: X-Late'], absent('trailer')],
  ['Proxy-Authorization', ['Proxy-Authorization: Basic YWxpY2U6cHc='], absent('proxy-authorization')],
  ['Proxy-Connection', ['Proxy-Connection: keep-alive'], absent('proxy-connection')],
  ['HTTP2-Settings', ['HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA'], absent('http2-settings')],
  ['a header named in Connection', ['Connection: close, X-Secret', 'X-Secret: 1'], absent('x-secret')],
  ['several headers named in Connection', ['Connection: close, X-A, X-B', 'X-A: 1', 'X-B: 2'], absent('x-a', 'x-b')],
  ['Authorization named in Connection', ['Connection: close, Authorization'], gatewayAuthorization],
  ['X-Forwarded-For named in Connection', ['Connection: close, X-Forwarded-For'], (h) => expect(h['x-forwarded-for']).toBe('127.0.0.1')],
  ['Host named in Connection', ['Connection: close, Host'], (h) => expect(h.host).toBe(new URL(stack.api.url).host)],
]

describe('what the upstream receives', () => {
  it.each(rows)('%s from the browser does not reach it', async (_name, lines, check) => {
    const response = await echo(lines)
    expect(response.status).toBe(200)
    check(upstreamHeaders())
  })

  it.each([
    ['Upgrade: h2c', ['Upgrade: h2c']],
    ['an h2c upgrade', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA']],
    ['Upgrade: TLS/1.2', ['Connection: Upgrade', 'Upgrade: TLS/1.2']],
  ])('%s is refused (400), nothing forwarded', async (_name, lines) => {
    const response = await echo(lines)
    expect(response.status).toBe(400)
    expect(response.body).toMatchObject({ error: 'invalid_request' })
    expect(stack.api.received).toEqual([])
  })

  it('Upgrade: websocket on a route without WebSockets is forbidden (403), nothing forwarded', async () => {
    const response = await echo(['Upgrade: websocket'])
    expect(response.status).toBe(403)
    expect(response.body).toMatchObject({ error: 'forbidden' })
    expect(stack.api.received).toEqual([])
  })

  it('Expect: 100-continue is answered by the gateway, not passed on: the upstream gets the body as it comes', async () => {
    const body = '{"note":"after the 100"}'
    const lines = ['POST /api/echo/1 HTTP/1.1', `Host: ${host}`, `Cookie: ${alice.cookie}`, `X-CSRF-Token: ${alice.csrfToken}`,
      'Content-Type: application/json', `Content-Length: ${body.length}`, 'Expect: 100-continue', 'Connection: close']
    const exchange = await rawExchange(stack.publicUrl, `${lines.join('\r\n')}\r\n\r\n${body}`)
    expect(exchange.statuses).toEqual([100, 200])
    const received = upstreamHeaders()
    expect(received.expect).toBeUndefined()
    expect(stack.api.received[0]!.body).toEqual({ note: 'after the 100' })
  })

  it('ordinary headers pass unchanged', async () => {
    const response = await echo(['Accept-Language: de-CH', 'X-Request-Name: orders', 'If-None-Match: "abc"'])
    expect(response.status).toBe(200)
    expect(upstreamHeaders()).toMatchObject({ 'accept-language': 'de-CH', 'x-request-name': 'orders', 'if-none-match': '"abc"' })
  })
})

describe('what the browser receives from the upstream', () => {
  it('never the upstream\'s Set-Cookie', async () => {
    const response = await echo([])
    expect(response.status).toBe(200)
    expect(response.text).not.toMatch(/upstream=leak/)
    const fetched = await fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: alice.cookie } })
    expect(fetched.headers.getSetCookie().filter(line => line.startsWith('upstream='))).toEqual([])
  })
})

describe('security headers on the gateway\'s own responses', () => {
  it.each([
    ['/healthz', 200],
    ['/bff/user', 401],
    ['/nowhere', 404],
  ])('%s carries CSP, nosniff, frame and referrer policies', async (path, status) => {
    const response = await fetch(`${stack.publicUrl}${path}`)
    expect(response.status).toBe(status)
    const csp = response.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    expect(response.headers.get('referrer-policy')).toBe('no-referrer')
    // PUBLIC_URL is plain http here: no HSTS, no upgrade of insecure requests.
    expect(response.headers.get('strict-transport-security')).toBeNull()
    expect(csp).not.toContain('upgrade-insecure-requests')
  })
})

describe('security headers on API answers', () => {
  function expectApiSet (response: Response) {
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'; sandbox")
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    expect(response.headers.get('referrer-policy')).toBe('no-referrer')
  }

  it('a proxied answer carries the API set, whatever the upstream sent', async () => {
    const response = await fetch(`${stack.publicUrl}/api/echo/1`, { headers: { cookie: alice.cookie } })
    expect(response.status).toBe(200)
    expect(stack.api.received).toHaveLength(1)
    expectApiSet(response)
  })

  it.each([
    ['no session', '/api/echo/1', false, 401],
    ['no rule', '/api/elsewhere', true, 403],
  ])('the gateway\'s own refusal on an API route (%s) carries it too', async (_name, path, signedIn, status) => {
    const response = await fetch(`${stack.publicUrl}${path}`, { headers: signedIn ? { cookie: alice.cookie } : {} })
    expect(response.status).toBe(status)
    expect(stack.api.received).toHaveLength(0)
    expectApiSet(response)
  })
})

describe('CORS', () => {
  async function preflight (origin: string, path = '/api/echo/1') {
    return fetch(`${stack.publicUrl}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-csrf-token' },
    })
  }

  function corsHeaders (response: Response): string[] {
    const names: string[] = []
    response.headers.forEach((_value, name) => { if (name.startsWith('access-control-')) names.push(name) })
    return names
  }

  it('answers a preflight from an allowed origin, with credentials and the CSRF header', async () => {
    const response = await preflight(ALLOWED_ORIGIN)
    expect(response.status).toBe(204)
    expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN)
    expect(response.headers.get('access-control-allow-credentials')).toBe('true')
    expect(response.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-csrf-token')
    expect(response.headers.get('access-control-allow-methods')).toContain('POST')
    expect(stack.api.received).toEqual([])
  })

  it.each(['https://evil.example', 'null', `${ALLOWED_ORIGIN}.evil.example`, 'http://admin.example.test'])('gives a preflight from %s no CORS headers at all', async (origin) => {
    for (const path of ['/api/echo/1', '/bff/logout']) {
      const response = await preflight(origin, path)
      expect(corsHeaders(response), path).toEqual([])
      expect(response.status, path).toBeGreaterThanOrEqual(400)
    }
    expect(stack.api.received).toEqual([])
  })

  it('reflects an allowed origin on a credentialed GET, and no other', async () => {
    const allowed = await fetch(`${stack.publicUrl}/bff/user`, { headers: { origin: ALLOWED_ORIGIN, cookie: alice.cookie } })
    expect(allowed.status).toBe(200)
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN)
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true')
    const other = await fetch(`${stack.publicUrl}/bff/user`, { headers: { origin: 'https://evil.example', cookie: alice.cookie } })
    expect(corsHeaders(other)).toEqual([])
  })
})
