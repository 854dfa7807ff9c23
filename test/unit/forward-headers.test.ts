/**
 * What the browser may see of the upstream's response headers: no cookies of
 * the upstream's, no hop-by-hop headers, never the upstream's values for our
 * API security headers, and no character a header value may not carry. And
 * what the upstream may see of the browser's: no credentials of the browser's,
 * nothing that would let it speak for the gateway.
 */
import { describe, expect, it } from 'vitest'
import { browserResponseHeaders, upstreamRequestHeaders } from '../../gateway/proxy/forward-headers.js'

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
    })).toEqual({ 'content-type': 'application/json', etag: '"v1"' })
  })

  it('removes characters no header value may carry, in single and repeated headers, every time', () => {
    const upstream = { 'x-note': 'a\u0001b\u007fc', link: ['<a>\u0000', '<b>'], 'x-fine': 'tab\tand obs-text \u00e9' }
    for (let i = 0; i < 3; i++) {
      expect(browserResponseHeaders(upstream)).toEqual({ 'x-note': 'abc', link: ['<a>', '<b>'], 'x-fine': 'tab\tand obs-text \u00e9' })
    }
  })
})

describe('the browser\'s request headers as the upstream gets them', () => {
  const context = { accessToken: 'at', clientIp: '203.0.113.7', publicProto: 'https', publicHost: 'app.example' }

  it('keeps ordinary headers; drops credentials, hop-by-hop headers, Host, Expect and every name Connection lists; sets ours last', () => {
    expect(upstreamRequestHeaders({
      accept: 'application/json',
      'accept-language': 'de-CH',
      host: 'app.example',
      expect: '100-continue',
      cookie: 'bff=secret',
      authorization: 'Bearer forged',
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
})
