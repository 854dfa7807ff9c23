/**
 * The plain modules behind the hardening: the streaming body limit, the
 * upgrade classification, the WebSocket Origin check, the parser's error
 * answers, the Host header rule, the security header options and the
 * configuration they read.
 */
import { readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BodyTooLargeError, countingStream, declaredLengthExceeds, isBodyTooLarge } from '../../gateway/proxy/body-limit.js'
import { upgradeKind } from '../../gateway/proxy/websocket.js'
import { checkWebSocketOrigin } from '../../gateway/edge/csrf-checks.js'
import { clientErrorResponse, hostHeaderProblem } from '../../gateway/edge/protocol-errors.js'
import { canonicalPathOf } from '../../gateway/proxy/normalise-path.js'
import { pageSecurityHeaders, securityHeaderOptions } from '../../gateway/edge/security-header-values.js'
import { ConfigError, loadConfig } from '../../gateway/config.js'

async function drain (chunks: Buffer[], limit: number): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(Readable.from(chunks), countingStream(limit), async function (source) {
    for await (const chunk of source) out.push(chunk as Buffer)
  })
  return Buffer.concat(out)
}

describe('body limit', () => {
  it('passes any body of at most `limit` bytes through unchanged, and fails any longer one', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 12 }),
      fc.integer({ min: 0, max: 400 }),
      async (parts, limit) => {
        const chunks = parts.map(part => Buffer.from(part))
        const total = Buffer.concat(chunks)
        if (total.length <= limit) {
          expect((await drain(chunks, limit)).equals(total)).toBe(true)
        } else {
          await expect(drain(chunks, limit)).rejects.toBeInstanceOf(BodyTooLargeError)
        }
      }
    ), { numRuns: 200 })
  })

  it.each([
    [undefined, false],
    ['0', false],
    ['1024', false],
    ['1025', true],
    ['99999999999999999999', true],
  ])('Content-Length %s over 1024: %s', (declared, over) => {
    expect(declaredLengthExceeds(declared, 1024)).toBe(over)
  })

  it('recognises the limit through a chain of causes', () => {
    const wrapped = new Error('upstream request failed', { cause: new Error('body', { cause: new BodyTooLargeError(1) }) })
    expect(isBodyTooLarge(wrapped)).toBe(true)
    expect(isBodyTooLarge(new Error('other'))).toBe(false)
  })
})

describe('upgrade classification', () => {
  const request = (headers: Record<string, string>, upgrade = false, method = 'GET') => ({ method, headers, upgrade })

  it('plain requests are http', () => {
    expect(upgradeKind(request({}), false)).toBe('http')
    expect(upgradeKind(request({}), true)).toBe('http')
  })

  it('a WebSocket handshake on a WebSocket route is a websocket', () => {
    expect(upgradeKind(request({ upgrade: 'websocket' }, true), true)).toBe('websocket')
    expect(upgradeKind(request({ upgrade: 'WebSocket' }, true), true)).toBe('websocket')
  })

  it.each([
    ['h2c', request({ upgrade: 'h2c' }, true), true, 400],
    ['h2c without Connection: upgrade', request({ upgrade: 'h2c' }), true, 400],
    ['TLS', request({ upgrade: 'TLS/1.2' }, true), true, 400],
    ['websocket over POST', request({ upgrade: 'websocket' }, true, 'POST'), true, 400],
    ['websocket without Connection: upgrade', request({ upgrade: 'websocket' }), true, 400],
    ['websocket on a route without WebSockets', request({ upgrade: 'websocket' }, true), false, 403],
    ['an upgrade without an Upgrade header', request({}, true), true, 400],
  ])('refuses %s', (_name, candidate, allowed, status) => {
    expect(() => upgradeKind(candidate, allowed)).toThrow(expect.objectContaining({ statusCode: status }))
  })
})

describe('WebSocket Origin', () => {
  const allowed = new Set(['https://app.example.com'])
  it.each([
    [undefined, false],
    ['null', false],
    ['https://evil.example', false],
    ['https://app.example.com.evil.example', false],
    ['https://app.example.com', true],
  ])('%s → %s', (origin, ok) => {
    expect(checkWebSocketOrigin(origin, allowed).ok).toBe(ok)
  })
})

describe('answers to what the HTTP parser refuses', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'headers_too_large'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'request_timeout'],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 400, 'invalid_request'],
    [undefined, 400, 'invalid_request'],
  ])('%s → %i %s, closing the connection', (code, status, error) => {
    const text = clientErrorResponse(code)
    expect(text.startsWith(`HTTP/1.1 ${status} `)).toBe(true)
    expect(text).toMatch(/\r\nConnection: close\r\n/)
    const [head, body] = text.split('\r\n\r\n') as [string, string]
    expect(Number(/Content-Length: (\d+)/.exec(head)?.[1])).toBe(Buffer.byteLength(body))
    expect(JSON.parse(body)).toEqual({ error, message: expect.any(String) })
  })
})

describe('Host header rule (RFC 9112 §3.2)', () => {
  const request = (version: string, rawHeaders: string[]) => {
    const headers: Record<string, string> = {}
    for (let i = rawHeaders.length - 2; i >= 0; i -= 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!
    const [major, minor] = version.split('.').map(Number) as [number, number]
    return { headers, rawHeaders, httpVersionMajor: major, httpVersionMinor: minor }
  }

  it.each([
    ['one Host', '1.1', ['Host', 'a.example', 'Accept', '*/*']],
    ['an HTTP/1.0 request without one', '1.0', ['Accept', '*/*']],
    ['a header whose name merely starts with "host"', '1.1', ['Host', 'a.example', 'Hostname', 'b.example']],
  ])('passes %s', (_case, version, rawHeaders) => {
    expect(hostHeaderProblem(request(version, rawHeaders))).toBeUndefined()
  })

  it.each([
    ['no Host on HTTP/1.1', '1.1', ['Accept', '*/*']],
    ['two Hosts, in any case', '1.1', ['Host', 'a.example', 'Accept', '*/*', 'HOST', 'b.example']],
    ['two Hosts on HTTP/1.0', '1.0', ['host', 'a.example', 'host', 'a.example']],
  ])('refuses %s', (_case, version, rawHeaders) => {
    expect(hostHeaderProblem(request(version, rawHeaders))).toMatch(/Host header/)
  })
})

describe('canonical path of a request target', () => {
  it('cuts the query and keeps the canonical path', () => {
    expect(canonicalPathOf('/api/orders/%61?x=/../').path).toBe('/api/orders/a')
  })
  it.each([['/a/../b', 400], ['*', 400], ['http://h/a', 400], [`/${'a'.repeat(3000)}`, 414]])('refuses %s with %i', (target, status) => {
    expect(() => canonicalPathOf(target)).toThrow(expect.objectContaining({ statusCode: status }))
  })
})

describe('security headers', () => {
  it('adds HSTS and upgrade-insecure-requests for an https PUBLIC_URL only', () => {
    const https = pageSecurityHeaders(securityHeaderOptions('https://app.example.com'))
    const http = pageSecurityHeaders(securityHeaderOptions('http://localhost:3000'))
    expect(https['strict-transport-security']).toBe('max-age=31536000; includeSubDomains')
    expect(http['strict-transport-security']).toBeUndefined()
    expect(https['content-security-policy']).toContain('upgrade-insecure-requests')
    expect(http['content-security-policy']).not.toContain('upgrade-insecure-requests')
  })

  it('works out helmet\'s page set once: a CSP of our own origin only, no framing, no sniffing', () => {
    const headers = pageSecurityHeaders(securityHeaderOptions('http://localhost:3000'))
    expect(headers['content-security-policy']).toBe(
      "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;font-src 'self';" +
      "connect-src 'self';object-src 'none';base-uri 'none';form-action 'self';frame-ancestors 'none'")
    expect(headers).toMatchObject({ 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' })
    expect(Object.isFrozen(headers)).toBe(true)
  })

  it('the CSP fits the demo page: no inline scripts, styles or event handlers, nothing from another origin', async () => {
    const html = await readFile(new URL('../../demo/index.html', import.meta.url), 'utf8')
    for (const script of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      expect(script[1]).toMatch(/\bsrc="\/[^/]/)
      expect(script[2]!.trim()).toBe('')
    }
    expect(html).not.toMatch(/<style\b/i)
    expect(html).not.toMatch(/\sstyle=/i)
    expect(html).not.toMatch(/\son[a-z]+=/i)
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i)
    const script = await readFile(new URL('../../demo/app.js', import.meta.url), 'utf8')
    expect(script).not.toMatch(/\beval\(|new Function\(|\.style\b|setAttribute\(['"]style/)
  })
})

describe('configuration of the limits', () => {
  const valid = {
    PUBLIC_URL: 'https://app.example.com',
    ADMIN_TOKEN: 'x'.repeat(40),
    SESSION_SECRET: 's'.repeat(40),
    OIDC_ISSUER: 'https://idp.example.com',
    OIDC_CLIENT_ID: 'bff',
    OIDC_CLIENT_SECRET: 'client-secret',
    ROUTES_FILE: fileURLToPath(new URL('../fixtures/routes.json', import.meta.url)),
  }

  it('defaults to 30 logins a minute and a 1 MiB body', () => {
    expect(loadConfig(valid)).toMatchObject({ loginRateLimit: 30, proxyBodyLimit: 1048576 })
  })

  it.each([
    ['LOGIN_RATE_LIMIT', '0'],
    ['LOGIN_RATE_LIMIT', 'many'],
    ['PROXY_BODY_LIMIT', '-1'],
    ['PROXY_BODY_LIMIT', '1.5'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    const error = (() => {
      try {
        return loadConfig({ ...valid, [name]: value })
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems.some(problem => problem.startsWith(`${name}:`))).toBe(true)
  })
})
