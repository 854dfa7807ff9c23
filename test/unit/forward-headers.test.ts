/**
 * What the browser may see of the upstream's response headers: no cookies of
 * the upstream's, no hop-by-hop headers, never the upstream's values for our
 * API security headers or its CORS headers, nothing a shared cache could store
 * a signed-in user's answer by, and no character a header value may not carry.
 * And what the upstream may see of the browser's: no credentials of the
 * browser's, nothing that would let it speak for the gateway or run another
 * method or path, however spelt.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import { browserResponseHeaders, combinedVary, upstreamRequestHeaders } from '../../gateway/proxy/forward-headers.js'

describe('the upstream\'s response headers as the browser gets them', () => {
  it('drops Set-Cookie, hop-by-hop headers and the upstream\'s copies of our security headers; keeps the rest', () => {
    expect(browserResponseHeaders({
      'content-type': 'application/json',
      etag: '"v1"',
      'set-cookie': ['upstream=1'],
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'x-frame-options': 'SAMEORIGIN',
      'content-security-policy': 'default-src *',
    }, false)).toEqual({ 'content-type': 'application/json', etag: '"v1"' })
  })

  it('removes characters no header value may carry, in single and repeated headers, every time', () => {
    const upstream = { 'x-note': 'a\u0001b\u007fc', link: ['<a>\u0000', '<b>'], 'x-fine': 'tab\tand obs-text \u00e9' }
    for (let i = 0; i < 3; i++) {
      expect(browserResponseHeaders(upstream, false)).toEqual({ 'x-note': 'abc', link: ['<a>', '<b>'], 'x-fine': 'tab\tand obs-text \u00e9' })
    }
  })
})

describe('the upstream\'s response headers on an answer to a signed-in user', () => {
  it('drops every CORS header, signed in or not', () => {
    const upstream = {
      'access-control-allow-origin': 'https://evil.example',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-secret',
      'content-type': 'application/json',
    }
    expect(browserResponseHeaders(upstream, false)).toEqual({ 'content-type': 'application/json' })
    expect(browserResponseHeaders(upstream, true)).toEqual({ 'content-type': 'application/json', 'cache-control': 'no-store' })
  })

  it('makes Cache-Control private and drops headers aimed at a CDN; without a session both pass', () => {
    const upstream = {
      'cache-control': 'public, max-age=600, s-maxage=3600',
      'cdn-cache-control': 'max-age=3600',
      'surrogate-control': 'max-age=3600',
      'surrogate-key': 'user-alice',
      etag: '"v1"',
    }
    expect(browserResponseHeaders(upstream, true)).toEqual({ 'cache-control': 'private, max-age=600', etag: '"v1"' })
    expect(browserResponseHeaders(upstream, false)).toEqual(upstream)
  })

  it('reads a repeated Cache-Control as one list, and removes characters a header may not carry', () => {
    // undici hands a repeated header over as an array, whatever the type of the field says.
    const repeated = { 'cache-control': ['public', 'max-age=60\u0001'] } as unknown as IncomingHttpHeaders
    expect(browserResponseHeaders(repeated, true)).toEqual({ 'cache-control': 'private, max-age=60' })
  })
})

describe('combinedVary', () => {
  it.each<[string | string[], string | string[], string]>([
    ['Origin', 'Accept-Encoding', 'Origin, Accept-Encoding'],
    ['Origin', 'origin, Accept', 'Origin, Accept'],
    [['Origin', 'Cookie'], ['Accept-Encoding'], 'Origin, Cookie, Accept-Encoding'],
    ['Origin', '*', '*'],
    ['Origin', ' , ', 'Origin'],
  ])('ours %j with the upstream\'s %j → %s', (own, upstream, expected) => {
    expect(combinedVary(own, upstream)).toBe(expected)
  })
})

describe('the browser\'s request headers as the upstream gets them', () => {
  const context = { accessToken: 'at', clientIp: '203.0.113.7', publicProto: 'https', publicHost: 'app.example' }
  const ours = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example', authorization: 'Bearer at' }

  it('keeps ordinary headers; drops credentials, hop-by-hop headers, Host, Expect and every name Connection lists; sets ours last', () => {
    expect(upstreamRequestHeaders({
      accept: 'application/json',
      'accept-language': 'de-CH',
      host: 'app.example',
      expect: '100-continue',
      cookie: 'bff=secret',
      authorization: 'Bearer forged',
      dpop: 'native-app-proof',
      'x-csrf-token': 'csrf',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-user': 'admin',
      connection: 'keep-alive, X-Secret , Authorization',
      'keep-alive': 'timeout=5',
      'x-secret': 'listed',
      'transfer-encoding': 'chunked',
    }, context)).toEqual({
      accept: 'application/json',
      'accept-language': 'de-CH',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example',
      authorization: 'Bearer at',
    })
  })

  it('drops the method and URL override headers', () => {
    expect(upstreamRequestHeaders({
      'x-http-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-method-override': 'DELETE',
      'x-original-method': 'DELETE',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      'x-override-url': '/admin',
      accept: 'application/json',
    }, context)).toEqual({ accept: 'application/json', ...ours })
  })

  it('drops a name that, with "_" read as "-", is one it drops or sets; keeps other names with "_"', () => {
    expect(upstreamRequestHeaders({
      x_forwarded_for: '6.6.6.6',
      'x-forwarded_host': 'evil.example',
      x_forwarded_user: 'admin',
      x_real_ip: '6.6.6.6',
      x_csrf_token: 'csrf',
      proxy_authorization: 'Basic x',
      transfer_encoding: 'chunked',
      keep_alive: 'timeout=5',
      x_http_method_override: 'DELETE',
      x_original_url: '/admin',
      x_request_name: 'orders',
      _: 'kept',
    }, context)).toEqual({ x_request_name: 'orders', _: 'kept', ...ours })
  })
})
