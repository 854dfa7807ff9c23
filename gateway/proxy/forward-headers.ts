/**
 * What the upstream may see of the browser's request headers, and what the
 * browser may see of the upstream's response headers.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { API_SECURITY_HEADERS } from '../edge/security-header-values.js'
import { METHOD_OVERRIDE_HEADERS } from './method-override.js'
import { privateCacheControl, isTargetedCacheHeader } from './shared-cache.js'

// RFC 9110 §7.6.1 plus the non-standard ones proxies have historically honoured.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings'])
// Browser credentials (a native app's DPoP proof among them) and anything that would let a client speak for the gateway.
const FROM_BROWSER_ONLY = ['cookie', 'authorization', 'dpop', 'x-csrf-token', 'forwarded', 'x-real-ip']
// The browser's Host names the gateway (undici sets the upstream's own); Node has already
// answered any `Expect: 100-continue` itself, and undici refuses to send the header.
const NOT_FOR_UPSTREAM = ['host', 'expect']
const DROPPED = new Set([...HOP_BY_HOP, ...FROM_BROWSER_ONLY, ...NOT_FOR_UPSTREAM, ...METHOD_OVERRIDE_HEADERS])

/**
 * Whether the upstream must not get a browser header of this (lower-case) name. CGI-style servers
 * (PHP, WSGI, Rack) read `X_Forwarded_For` as `X-Forwarded-For`, so a name with `_` is judged as
 * if each `_` were `-`; most names have none, and pay only for looking.
 */
function isDropped (name: string): boolean {
  if (DROPPED.has(name) || name.startsWith('x-forwarded-')) return true
  if (!name.includes('_')) return false
  const asDashes = name.replaceAll('_', '-')
  return DROPPED.has(asDashes) || asDashes.startsWith('x-forwarded-')
}

export interface ForwardContext {
  /** What the upstream gets in `Authorization`; undefined: no `Authorization` at all. */
  accessToken: string | undefined
  /** `DPoP` for a DPoP-bound token (the proof header is the proxy's to add); default `Bearer`. */
  tokenScheme?: 'Bearer' | 'DPoP'
  clientIp: string
  publicProto: string
  publicHost: string
}

/**
 * The headers sent upstream: the browser's, less hop-by-hop headers, the names
 * the browser listed in `Connection` (RFC 9110 §7.6.1), its credentials, the
 * headers that would make the upstream run another method or path than the
 * policy allowed, and any of these spelt with `_` for `-`, with the forwarding
 * headers and `Authorization` (when the route sends a token) set last, so no
 * browser header can remove or replace them.
 */
export function upstreamRequestHeaders (headers: IncomingHttpHeaders, context: ForwardContext): IncomingHttpHeaders {
  const forwarded: IncomingHttpHeaders = {}
  const listed = headers.connection === undefined ? undefined : connectionOptions(headers.connection)
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || isDropped(name) || listed?.has(name) === true) continue
    forwarded[name] = value
  }
  forwarded['x-forwarded-for'] = context.clientIp
  forwarded['x-forwarded-proto'] = context.publicProto
  forwarded['x-forwarded-host'] = context.publicHost
  if (context.accessToken !== undefined) forwarded.authorization = `${context.tokenScheme ?? 'Bearer'} ${context.accessToken}`
  return forwarded
}

/** The header names a `Connection` header lists, lower-cased. */
function connectionOptions (value: string): Set<string> {
  const names = new Set<string>()
  for (const name of value.split(',')) {
    const trimmed = name.trim().toLowerCase()
    if (trimmed !== '') names.add(trimmed)
  }
  return names
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
 * never its own values for our API security headers (they would replace ours), never a CORS
 * header (the gateway alone decides which origins may read an answer), and no value with
 * characters a header may not carry.
 *
 * An answer to a request admitted with a session is the user's own: no shared cache may store
 * it (`privateCacheControl`), and headers aimed at a CDN (`CDN-Cache-Control`, `Surrogate-*`, …),
 * which CDNs obey over `Cache-Control`, are dropped.
 */
export function browserResponseHeaders (headers: IncomingHttpHeaders, admittedWithSession: boolean): IncomingHttpHeaders {
  const result: IncomingHttpHeaders = {}
  for (const name in headers) {
    if (name === 'set-cookie' || HOP_BY_HOP.has(name) || OURS.has(name) || name.startsWith('access-control-')) continue
    if (admittedWithSession && (name === 'cache-control' || isTargetedCacheHeader(name))) continue
    const value = headers[name]
    if (typeof value === 'string') result[name] = sanitised(value)
    else if (Array.isArray(value)) result[name] = value.map(sanitised)
  }
  if (admittedWithSession) result['cache-control'] = sanitised(privateCacheControl(headers['cache-control']))
  return result
}

/**
 * The gateway's own `Vary` (the CORS layer's `Origin`) with the upstream's added, each name once,
 * so the upstream's does not replace ours; `*` from either side stays `*`.
 */
export function combinedVary (own: string | number | readonly string[], upstream: string | readonly string[]): string {
  const names = new Map<string, string>()
  for (const list of [own, upstream].flat()) {
    for (const name of String(list).split(',')) {
      const trimmed = name.trim()
      if (trimmed !== '' && !names.has(trimmed.toLowerCase())) names.set(trimmed.toLowerCase(), trimmed)
    }
  }
  return names.has('*') ? '*' : [...names.values()].join(', ')
}
