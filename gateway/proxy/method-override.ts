/**
 * Ways a request can ask its upstream to act as another method or on another
 * path than the one the route policy allowed: override headers, which are
 * never forwarded, and a `_method` parameter, which Rails (Rack), Laravel and
 * Symfony read from the query string or the body of a form, and which is
 * refused unless the route allows it.
 *
 * Names are judged as the most lenient of those frameworks would read them:
 * percent-decoded, in any case, and with PHP's renaming of variables
 * (leading spaces dropped; ` `, `.` and `[` turned into `_`; cut at a NUL;
 * `_method[…]` is an array named `_method`).
 */
import { unescape as decodeFormComponent } from 'node:querystring'

/** Why a request carrying `_method` is refused on a route that does not allow it. */
export const METHOD_PARAM_REFUSED = 'A _method parameter would make the upstream use another method than this request\'s; this route does not allow it'

/** Request headers that name another method or path for the upstream to use. */
export const METHOD_OVERRIDE_HEADERS = [
  'x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-method',
  'x-original-url', 'x-rewrite-url', 'x-override-url',
]

const METHOD_PARAM = '_method'

/** Whether a decoded parameter name would be read as `_method`. */
export function isMethodParamName (name: string): boolean {
  if (name.length < METHOD_PARAM.length) return false
  let base = name.toLowerCase().trimStart()
  const nul = base.indexOf('\0')
  if (nul !== -1) base = base.slice(0, nul)
  const bracket = base.indexOf('[')
  if (bracket > 0 && base.indexOf(']', bracket) !== -1) base = base.slice(0, bracket)
  return base.replace(/[ .[]/g, '_') === METHOD_PARAM
}

/**
 * Whether an encoded query string or form body (`a=1&b=2`, without `?`) has a `_method`
 * parameter. Pairs split on `&` and also on `;`, as Rack 2 split query strings.
 */
export function hasMethodParam (encoded: string): boolean {
  // Every spelling holds the letters "method" or a percent-escape: most queries are done here.
  if (!encoded.includes('%') && !/method/i.test(encoded)) return false
  for (const pair of encoded.split(/[&;]/)) {
    const equals = pair.indexOf('=')
    const name = equals === -1 ? pair : pair.slice(0, equals)
    if (isMethodParamName(decodeFormComponent(name.replaceAll('+', ' ')))) return true
  }
  return false
}

export type BodyKind = 'form' | 'multipart' | 'other'

/**
 * How frameworks that honour `_method` would read a body of this Content-Type: as a form
 * (`application/x-www-form-urlencoded`, and no Content-Type at all, which Rack reads as a form),
 * as multipart (any `multipart/*`, as Rack does), or not for parameters at all. The media type
 * ends at the first `;`, `,` or space, as PHP reads it.
 */
export function bodyKind (contentType: string | undefined): BodyKind {
  if (contentType === undefined) return 'form'
  const end = contentType.search(/[;,\s]/)
  const mediaType = (end === -1 ? contentType : contentType.slice(0, end)).toLowerCase()
  if (mediaType === '' || mediaType === 'application/x-www-form-urlencoded') return 'form'
  return mediaType.startsWith('multipart/') ? 'multipart' : 'other'
}

// RFC 2046 §5.1.1 boundary characters, less the space and the comma (where Rack's and PHP's reading stops).
const BOUNDARY = /^[0-9A-Za-z'()+_\-./:=?]{1,70}$/
const BOUNDARY_PARAM = /boundary\s*=\s*(?:"([^"]*)"|([^\s;,"]*))/i

/**
 * The boundary of a multipart Content-Type, or undefined when it is missing or could be read
 * more than one way. Rack takes the last `boundary=` anywhere in the header, PHP the first
 * `boundary` and the `=` after it (even inside another parameter's quoted value), other parsers
 * the parameter: only a header where all of them find the same one is read.
 */
export function multipartBoundary (contentType: string): string | undefined {
  const match = BOUNDARY_PARAM.exec(contentType)
  if (match === null) return undefined
  const boundary = match[1] ?? match[2] ?? ''
  const lower = contentType.toLowerCase()
  const elsewhere = lower.indexOf('boundary') !== match.index ||
    lower.indexOf('boundary', match.index + match[0].length) !== -1 ||
    boundary.toLowerCase().includes('boundary=')
  return !elsewhere && BOUNDARY.test(boundary) ? boundary : undefined
}

// A `name` or RFC 2231/5987 `name*` parameter anywhere in a part's headers, its value quoted (the
// closing quote may be cut off) or not. `filename=` does not count: `name` must follow `;` or space.
const NAME_PARAM = /(?:^|[\s;])name(\*?)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;\s]*)/gi

/**
 * Whether the header block of one multipart part names it `_method`. Every `name` parameter
 * counts (PHP takes the last, Rack the first), read raw, unescaped and percent-decoded.
 */
export function partNamesMethodParam (headers: string): boolean {
  for (const [, extended, value = ''] of headers.matchAll(NAME_PARAM)) {
    const raw = value.startsWith('"') ? value.slice(1, value.endsWith('"') && value.length > 1 ? -1 : undefined) : value
    // `name*=utf-8''%5Fmethod`: the value follows the charset and language.
    const text = extended === '*' ? raw.slice(raw.indexOf("'", raw.indexOf("'") + 1) + 1) : raw
    const unescaped = text.replace(/\\(.)/g, '$1')
    if ([text, unescaped, decodeFormComponent(unescaped)].some(isMethodParamName)) return true
  }
  return false
}
