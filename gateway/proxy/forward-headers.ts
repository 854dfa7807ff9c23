/**
 * What the upstream may see of the browser's request headers, and what the
 * browser may see of the upstream's response headers.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { API_SECURITY_HEADERS } from '../security-headers.js'

// RFC 9110 §7.6.1 plus the non-standard ones proxies have historically honoured.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings'])
// Browser credentials and anything that would let a client speak for the gateway.
const FROM_BROWSER_ONLY = ['cookie', 'authorization', 'x-csrf-token', 'forwarded', 'x-real-ip']
const DROPPED = new Set([...HOP_BY_HOP, ...FROM_BROWSER_ONLY])

export interface ForwardContext {
  accessToken: string
  clientIp: string
  publicProto: string
  publicHost: string
}

/**
 * The headers sent upstream. Runs after @fastify/reply-from has already removed
 * the names the client listed in `Connection`, and sets `Authorization` last,
 * so no client header can remove or replace it.
 */
export function upstreamRequestHeaders (headers: IncomingHttpHeaders, context: ForwardContext): IncomingHttpHeaders {
  const forwarded: IncomingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || DROPPED.has(name) || name.startsWith('x-forwarded-')) continue
    forwarded[name] = value
  }
  forwarded['x-forwarded-for'] = context.clientIp
  forwarded['x-forwarded-proto'] = context.publicProto
  forwarded['x-forwarded-host'] = context.publicHost
  forwarded.authorization = `Bearer ${context.accessToken}`
  return forwarded
}

// The security-headers plugin has set ours on every API reply before it is forwarded.
const OURS = new Set(Object.keys(API_SECURITY_HEADERS))

// Not allowed in a header value (RFC 9110 §5.5); Node refuses to send them and would fail the answer.
const INVALID_VALUE_CHAR = /[^\t\x20-\x7E\x80-\xFF]/
const INVALID_VALUE_CHARS = new RegExp(INVALID_VALUE_CHAR.source, 'g')

function sanitised (value: string): string {
  return INVALID_VALUE_CHAR.test(value) ? value.replace(INVALID_VALUE_CHARS, '') : value
}

/**
 * The upstream's response headers as the browser gets them: never a cookie of the upstream's,
 * never its own values for our API security headers (they would replace ours), and no value
 * with characters a header may not carry.
 */
export function browserResponseHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const result: IncomingHttpHeaders = {}
  for (const name in headers) {
    if (name === 'set-cookie' || HOP_BY_HOP.has(name) || OURS.has(name)) continue
    const value = headers[name]
    if (typeof value === 'string') result[name] = sanitised(value)
    else if (Array.isArray(value)) result[name] = value.map(sanitised)
  }
  return result
}
