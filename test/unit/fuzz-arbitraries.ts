/**
 * Hostile inputs for the property-based tests: paths built from the pieces
 * path-confusion attacks are made of (dot-segments, encoded separators, double
 * encoding, overlong UTF-8, Unicode that folds into syntax, control bytes),
 * mixed with plain and entirely random text so the properties also see noise.
 */
import fc from 'fast-check'

const PATH_PIECES = [
  'a', 'b', 'z', '0', '9', '-', '_', '~', 'api', 'orders', 'admin', 'users', 'me', '1', '42', '__proto__', 'constructor',
  '.', '..', '...', '/', '//', '\\', ';', '?', '#', '%', ':', '@', '+', '*', '&', '=', '!', "'", '(', ')', '[', ']', '|', '"', '<', '>', '`', '{', '}', '^',
  '%2e', '%2E', '%2e%2e', '.%2e', '%2f', '%2F', '%5c', '%5C', '%3b', '%3B', '%25', '%252e', '%252f', '%3f', '%23', '%20', '%2b',
  '%00', '%0a', '%0d', '%09', '%1f', '%7f', '%c2%85', '%C2%A0', '%c0%ae', '%c0%af', '%e0%80%af', '%ed%a0%80', '%f4%90%80%80', '%c3', '%ff', '%fe%ff',
  '%ef%bc%8f', '%ef%bc%bc', '%ef%bc%8e', '%e2%80%a5', '%ef%b9%92', '%ef%bc%9f', '%e2%81%84', '%e2%88%95', '%ef%bb%bf', '%C3%A9', '%e2%82%ac', '%f0%9f%98%80',
  '%zz', '%4', '%g0', '%%', ' ', '\t', '\r', '\n', '\u0000', '\u007f', '\u0085', 'é', '\uff0f', '\u2025', '\ufe52', '\u2215', '\ud800',
]

/** One path segment: a few hostile pieces, or arbitrary text. */
export const hostileSegment: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 4 }).map(pieces => pieces.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) }
)

/** A request path as it could arrive on the wire (not necessarily starting with "/"). */
export const hostilePath: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.array(hostileSegment, { maxLength: 6 }).map(segments => '/' + segments.join('/')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(s => '/' + s) }
)

export const anyMethod = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'get', 'TRACE', 'PROPFIND', 'CONNECT')

/** Characters that may never survive into a canonical path or a decoded segment. */
export const CONTROL = /\p{Cc}/u
