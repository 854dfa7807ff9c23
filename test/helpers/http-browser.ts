/**
 * A tiny browser for tests: Node's fetch with manual redirects and a cookie
 * jar that behaves like a real one (RFC 6265 plus what current browsers add).
 *
 * - By default cookies are kept per origin (scheme, host and port), so the
 *   gateway and the IdP on two ports of 127.0.0.1 have separate jars. Real
 *   browsers ignore the port: `new HttpBrowser({ cookieScope: 'host' })` does
 *   too (e.g. one browser talking to two gateway instances on one host).
 * - Host-only unless a Domain attribute is given; Path matching; Max-Age wins
 *   over Expires; an expired or Max-Age<=0 Set-Cookie deletes the cookie.
 * - Secure cookies are accepted from and sent to secure origins only, where
 *   http://localhost and loopback addresses count as secure (as in Chromium).
 *   The __Secure- and __Host- prefixes are enforced, and SameSite=None needs
 *   Secure.
 * - SameSite is applied only when a request says where it comes from
 *   (`initiator`); the browser then also sends Sec-Fetch-Site/-Mode and, for
 *   unsafe methods, Origin. Without an initiator, requests are like typing a
 *   URL or a same-origin fetch: all matching cookies, no Sec-Fetch headers.
 */

export type SameSite = 'Strict' | 'Lax' | 'None'

export interface StoredCookie {
  name: string
  value: string
  /** The host it was set by (host-only) or its Domain attribute, without a leading dot. */
  domain: string
  /** Origin of the response that set it; with cookieScope 'origin', the only origin it is sent to. */
  origin: string
  hostOnly: boolean
  path: string
  secure: boolean
  httpOnly: boolean
  /** As set; undefined means the attribute was absent (browsers then treat it as Lax). */
  sameSite: SameSite | undefined
  /** The Max-Age attribute as received, in seconds. */
  maxAge?: number
  /** When it expires, from Max-Age or Expires; undefined for a session cookie. */
  expires?: Date
  createdAt: number
}

export interface BrowserRecord {
  method: string
  url: string
  status: number
  headers: Headers
  /** The raw Set-Cookie header lines of this response. */
  setCookies: string[]
  /** Absolute redirect target, when the response is a redirect. */
  location?: string
  at: number
}

export interface ChainEntry extends BrowserRecord {
  /** Body text, read for redirect responses only (the final response is returned unread). */
  body?: string
}

export interface RequestContext {
  /** Origin (or any URL) of the page making the request; enables SameSite and Sec-Fetch-* behaviour. */
  initiator?: string
  /** A top-level navigation (link, form, address bar) rather than a fetch(); matters for SameSite=Lax. */
  navigation?: boolean
}

export interface FollowOptions extends RequestContext {
  maxRedirects?: number
}

export interface FollowResult {
  /** The first non-redirect response, body unread. */
  response: Response
  /** Its URL. */
  url: string
  /** Every response on the way, the final one included. */
  chain: ChainEntry[]
}

export interface HttpBrowserOptions {
  /** 'origin' (default): a cookie goes back only to the origin that set it. 'host': any port, as in browsers. */
  cookieScope?: 'origin' | 'host'
  userAgent?: string
  /** Sent with every request unless the request sets the same header. */
  headers?: Record<string, string>
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

function isLoopbackHost (hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]' || hostname === '::1'
}

function isSecureOrigin (url: URL): boolean {
  return url.protocol === 'https:' || url.protocol === 'wss:' || isLoopbackHost(url.hostname)
}

function isIpAddress (hostname: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(hostname) || hostname.startsWith('[')
}

/** RFC 6265 5.1.3 */
function domainMatches (host: string, domain: string): boolean {
  if (host === domain) return true
  return !isIpAddress(host) && host.endsWith(`.${domain}`)
}

/** RFC 6265 5.1.4 */
function pathMatches (requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}

function defaultPath (url: URL): string {
  const path = url.pathname
  if (!path.startsWith('/') || path.lastIndexOf('/') === 0) return '/'
  return path.slice(0, path.lastIndexOf('/'))
}

/** Scheme plus an approximation of the registrable domain (last two labels); enough for tests. */
function siteOf (url: URL): string {
  const host = url.hostname
  const site = isIpAddress(host) || !host.includes('.') ? host : host.split('.').slice(-2).join('.')
  const scheme = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol
  return `${scheme}//${site}`
}

function parseSameSite (value: string): SameSite | undefined {
  switch (value.toLowerCase()) {
    case 'strict': return 'Strict'
    case 'lax': return 'Lax'
    case 'none': return 'None'
    default: return undefined
  }
}

/** Parses one Set-Cookie line against the URL that sent it; undefined when a browser would ignore it. */
export function parseSetCookie (line: string, from: URL, now = Date.now()): StoredCookie | undefined {
  const [pair = '', ...attributes] = line.split(';')
  const separator = pair.indexOf('=')
  if (separator < 0) return undefined
  const name = pair.slice(0, separator).trim()
  const value = pair.slice(separator + 1).trim()
  if (!name) return undefined

  const cookie: StoredCookie = {
    name,
    value,
    domain: from.hostname,
    origin: from.origin,
    hostOnly: true,
    path: defaultPath(from),
    secure: false,
    httpOnly: false,
    sameSite: undefined,
    createdAt: now,
  }
  let expiresAttribute: Date | undefined
  let domainAttribute: string | undefined

  for (const attribute of attributes) {
    const equals = attribute.indexOf('=')
    const key = (equals < 0 ? attribute : attribute.slice(0, equals)).trim().toLowerCase()
    const attributeValue = equals < 0 ? '' : attribute.slice(equals + 1).trim()
    switch (key) {
      case 'expires': {
        const time = Date.parse(attributeValue)
        if (!Number.isNaN(time)) expiresAttribute = new Date(time)
        break
      }
      case 'max-age':
        if (/^-?\d+$/.test(attributeValue)) cookie.maxAge = Number(attributeValue)
        break
      case 'domain':
        if (attributeValue) domainAttribute = attributeValue.replace(/^\./, '').toLowerCase()
        break
      case 'path':
        cookie.path = attributeValue.startsWith('/') ? attributeValue : defaultPath(from)
        break
      case 'secure':
        cookie.secure = true
        break
      case 'httponly':
        cookie.httpOnly = true
        break
      case 'samesite':
        cookie.sameSite = parseSameSite(attributeValue)
        break
    }
  }

  if (cookie.maxAge !== undefined) {
    cookie.expires = new Date(cookie.maxAge <= 0 ? 0 : now + cookie.maxAge * 1000)
  } else if (expiresAttribute) {
    cookie.expires = expiresAttribute
  }

  if (domainAttribute !== undefined) {
    if (!domainMatches(from.hostname, domainAttribute)) return undefined
    cookie.domain = domainAttribute
    cookie.hostOnly = false
  }

  const secureOrigin = isSecureOrigin(from)
  if (cookie.secure && !secureOrigin) return undefined
  if (name.startsWith('__Secure-') && !(cookie.secure && secureOrigin)) return undefined
  if (name.startsWith('__Host-') && !(cookie.secure && secureOrigin && cookie.hostOnly && cookie.path === '/')) return undefined
  if (cookie.sameSite === 'None' && !cookie.secure) return undefined
  return cookie
}

export class HttpBrowser {
  readonly history: BrowserRecord[] = []
  readonly #jar: StoredCookie[] = []
  readonly #defaultHeaders: Record<string, string>
  readonly #perOrigin: boolean

  constructor (options: HttpBrowserOptions = {}) {
    this.#perOrigin = (options.cookieScope ?? 'origin') === 'origin'
    this.#defaultHeaders = {
      'user-agent': options.userAgent ?? 'Mozilla/5.0 (HttpBrowser; test)',
      accept: 'text/html,application/json;q=0.9,*/*;q=0.8',
      ...options.headers,
    }
  }

  /** One request, no redirect following; stores the response's cookies. */
  async fetch (input: string | URL, init: RequestInit = {}, context: RequestContext = {}): Promise<Response> {
    return (await this.#send(input, init, context)).response
  }

  /** Follows redirects like a browser (303, and 301/302 after POST, become GET) through the jar. */
  async follow (input: string | URL, init: RequestInit = {}, options: FollowOptions = {}): Promise<FollowResult> {
    const { maxRedirects = 20, ...context } = options
    const chain: ChainEntry[] = []
    let url = new URL(input)
    let request: RequestInit = init
    for (let hop = 0; ; hop += 1) {
      const { response, record } = await this.#send(url, request, context)
      if (!record.location) {
        chain.push({ ...record })
        return { response, url: url.href, chain }
      }
      chain.push({ ...record, body: await response.text() })
      if (hop >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects, last to ${record.location}`)

      const method = (request.method ?? 'GET').toUpperCase()
      const becomesGet = (response.status === 303 && method !== 'HEAD') ||
        ((response.status === 301 || response.status === 302) && method === 'POST')
      if (becomesGet) {
        const headers = new Headers(request.headers)
        for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language']) headers.delete(name)
        const { body: _body, ...rest } = request
        request = { ...rest, method: 'GET', headers }
      }
      url = new URL(record.location)
    }
  }

  /** The cookies a request to this URL would carry, in Cookie header order. */
  cookies (input: string | URL, context: RequestContext & { method?: string } = {}): StoredCookie[] {
    const url = new URL(input)
    this.#evictExpired()
    const crossSite = context.initiator !== undefined && siteOf(new URL(context.initiator)) !== siteOf(url)
    const laxAllowed = context.navigation === true && ['GET', 'HEAD'].includes((context.method ?? 'GET').toUpperCase())
    return this.#jar
      .filter(cookie => !this.#perOrigin || cookie.origin === url.origin)
      .filter(cookie => cookie.hostOnly ? cookie.domain === url.hostname : domainMatches(url.hostname, cookie.domain))
      .filter(cookie => pathMatches(url.pathname, cookie.path))
      .filter(cookie => !cookie.secure || isSecureOrigin(url))
      .filter(cookie => {
        if (!crossSite) return true
        const sameSite = cookie.sameSite ?? 'Lax'
        return sameSite === 'None' || (sameSite === 'Lax' && laxAllowed)
      })
      .sort((a, b) => b.path.length - a.path.length || a.createdAt - b.createdAt)
      .map(cookie => ({ ...cookie }))
  }

  /** One cookie visible at the URL, by name. */
  cookie (input: string | URL, name: string): StoredCookie | undefined {
    return this.cookies(input).find(cookie => cookie.name === name)
  }

  cookieHeader (input: string | URL, context: RequestContext & { method?: string } = {}): string {
    return this.cookies(input, context).map(cookie => `${cookie.name}=${cookie.value}`).join('; ')
  }

  /** Every stored, unexpired cookie of every origin. */
  allCookies (): StoredCookie[] {
    this.#evictExpired()
    return this.#jar.map(cookie => ({ ...cookie }))
  }

  /** Applies a Set-Cookie line as if the URL had sent it; false when a browser would ignore it. */
  setCookie (input: string | URL, line: string): boolean {
    const cookie = parseSetCookie(line, new URL(input))
    if (!cookie) return false
    const index = this.#jar.findIndex(existing =>
      existing.name === cookie.name && existing.domain === cookie.domain &&
      existing.path === cookie.path && existing.hostOnly === cookie.hostOnly &&
      (!this.#perOrigin || existing.origin === cookie.origin))
    const existing = index >= 0 ? this.#jar[index] : undefined
    if (existing) {
      cookie.createdAt = existing.createdAt
      this.#jar.splice(index, 1)
    }
    if (cookie.expires === undefined || cookie.expires.getTime() > Date.now()) this.#jar.push(cookie)
    return true
  }

  clearCookies (): void {
    this.#jar.length = 0
  }

  async #send (input: string | URL, init: RequestInit, context: RequestContext): Promise<{ response: Response, record: BrowserRecord }> {
    const url = new URL(input)
    const method = (init.method ?? 'GET').toUpperCase()
    const headers = new Headers(init.headers)
    for (const [name, value] of Object.entries(this.#defaultHeaders)) {
      if (!headers.has(name)) headers.set(name, value)
    }
    if (context.initiator !== undefined) this.#addFetchMetadata(headers, url, method, context)
    if (!headers.has('cookie')) {
      const cookie = this.cookieHeader(url, { ...context, method })
      if (cookie) headers.set('cookie', cookie)
    }

    const response = await fetch(url, { ...init, method, headers, redirect: 'manual' })
    const setCookies = response.headers.getSetCookie()
    for (const line of setCookies) this.setCookie(url, line)

    const location = response.headers.get('location')
    const record: BrowserRecord = {
      method,
      url: url.href,
      status: response.status,
      headers: new Headers(response.headers),
      setCookies,
      ...(location && REDIRECT_STATUSES.has(response.status) ? { location: new URL(location, url).href } : {}),
      at: Date.now(),
    }
    this.history.push(record)
    return { response, record }
  }

  #evictExpired (): void {
    const now = Date.now()
    for (let i = this.#jar.length - 1; i >= 0; i -= 1) {
      const expires = this.#jar[i]?.expires
      if (expires && expires.getTime() <= now) this.#jar.splice(i, 1)
    }
  }

  #addFetchMetadata (headers: Headers, url: URL, method: string, context: RequestContext): void {
    const initiator = new URL(context.initiator as string)
    const relation = initiator.origin === url.origin
      ? 'same-origin'
      : siteOf(initiator) === siteOf(url) ? 'same-site' : 'cross-site'
    if (!headers.has('sec-fetch-site')) headers.set('sec-fetch-site', relation)
    if (!headers.has('sec-fetch-mode')) headers.set('sec-fetch-mode', context.navigation ? 'navigate' : 'cors')
    if (!['GET', 'HEAD'].includes(method) && !headers.has('origin')) headers.set('origin', initiator.origin)
  }
}
