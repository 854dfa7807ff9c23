/**
 * Keeping an answer meant for one signed-in user out of shared caches (a CDN,
 * a company proxy, a cache in front of the gateway): `Cache-Control` made
 * `private`, and the headers that address a CDN directly removed.
 */

// Directives that let a shared cache store the answer, or speak to shared caches alone (RFC 9111 §5.2.2).
// `private` is among them because its qualified form, `private="field"`, keeps only the named fields private.
const SHARED_CACHE_DIRECTIVES = new Set(['public', 'private', 's-maxage', 'proxy-revalidate'])

// Headers with which an origin tells a CDN what to store, and for how long, over `Cache-Control`:
// RFC 9213's CDN-Cache-Control and its `<vendor>-CDN-Cache-Control` kin, Surrogate-Control
// (Fastly, Akamai, Varnish), Edge-Control (Akamai), nginx's X-Accel-Expires, and the tags by
// which a CDN groups what it stored (Surrogate-Key, Cache-Tag, Edge-Cache-Tag, xkey).
const TARGETED_CACHE_HEADERS = new Set([
  'cdn-cache-control', 'surrogate-control', 'edge-control', 'x-accel-expires',
  'surrogate-key', 'cache-tag', 'edge-cache-tag', 'xkey',
])

/** Whether a (lower-case) response header addresses a CDN or other shared cache directly. */
export function isTargetedCacheHeader (name: string): boolean {
  return TARGETED_CACHE_HEADERS.has(name) || name.endsWith('-cache-control')
}

/**
 * The upstream's `Cache-Control` made safe from shared caches: `private`, then every directive
 * the upstream sent as it sent it (`max-age`, `no-cache`, `no-store`, …) but `public`, `private`,
 * `s-maxage` and `proxy-revalidate`. An upstream that said nothing gets `no-store`: an answer
 * nobody marked cacheable is stored by no cache at all.
 */
export function privateCacheControl (value: string | readonly string[] | undefined): string {
  const directives = value === undefined ? [] : splitDirectives(typeof value === 'string' ? value : value.join(','))
  if (directives.length === 0) return 'no-store'
  const kept = directives.filter((directive) => !SHARED_CACHE_DIRECTIVES.has(directiveName(directive)))
  return ['private', ...kept].join(', ')
}

/** The directives of a Cache-Control value, trimmed, empty ones left out; a comma inside a quoted string does not split. */
function splitDirectives (value: string): string[] {
  const directives: string[] = []
  let start = 0
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const char = value[i]
    if (quoted && char === '\\') i++
    else if (char === '"') quoted = !quoted
    else if (char === ',' && !quoted) {
      directives.push(value.slice(start, i).trim())
      start = i + 1
    }
  }
  directives.push(value.slice(start).trim())
  return directives.filter((directive) => directive !== '')
}

function directiveName (directive: string): string {
  const equals = directive.indexOf('=')
  return (equals === -1 ? directive : directive.slice(0, equals)).trim().toLowerCase()
}
