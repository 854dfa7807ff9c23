/**
 * Where a call goes. Every call names a path on the gateway's origin and
 * nothing else, so the CSRF token or the session credential can never be sent
 * to another host. Plain string work, not `URL`: React Native's `URL` is
 * incomplete without a polyfill.
 */
const ORIGIN = /^https?:\/\/[^/?#\\\s@]+$/i

/** The gateway's origin (`PUBLIC_URL`), from a base URL with or without a trailing slash. */
export function gatewayOrigin (baseUrl: string): string {
  const origin = baseUrl.replace(/\/+$/, '')
  if (!ORIGIN.test(origin)) throw new TypeError(`baseUrl must be the gateway's origin, like https://app.example.com (got ${JSON.stringify(baseUrl)})`)
  return origin
}

export interface GatewayUrl {
  /** The URL to request. */
  href: string
  /** The same without query or fragment: a DPoP proof's `htu`. */
  htu: string
}

/** `path` on the gateway: one leading `/`, no `//` or `\` that a parser could read as another host. */
export function gatewayUrl (origin: string, path: string): GatewayUrl {
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\')) {
    throw new TypeError(`a gateway path starts with a single "/" (got ${JSON.stringify(path)})`)
  }
  return { href: origin + path, htu: origin + path.split(/[?#]/, 1)[0] }
}
