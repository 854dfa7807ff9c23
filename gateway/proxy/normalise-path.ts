import { InvalidPath, UriTooLong } from '../errors.js'

/** The longest request path (without its query) the gateway accepts. */
export const MAX_PATH_LENGTH = 2048

export interface NormalisedPath {
  ok: true
  /** Canonical encoded form: what the upstream receives (before the prefix rewrite). */
  path: string
  /** Decoded segments; a trailing slash shows as a final empty segment (`/` is `['']`). */
  segments: string[]
}

export interface RefusedPath {
  ok: false
  reason: string
}

/**
 * Decodes and normalises a request path once, before route matching.
 *
 * Anything that different servers could read differently is refused rather
 * than resolved: dot-segments, empty segments (`//`), backslashes, `;` path
 * parameters, percent-encoded `/`, `\`, `.`, `;` and `%` (so double encoding
 * cannot survive), control characters, malformed escapes, escapes that are
 * not valid UTF-8 (overlong forms, surrogates), raw non-ASCII, and
 * characters that Unicode compatibility folding (NFKC) turns into path
 * syntax, such as the fullwidth solidus.
 *
 * Accepted paths are re-encoded segment by segment with `encodeURIComponent`,
 * so `/orders/%61bc` becomes `/orders/abc` and `/orders/caf%C3%A9` stays as
 * is. A trailing slash is kept: `/orders/` is a different path from `/orders`.
 *
 * @param raw the path as it arrived on the wire, already cut at the first `?`
 */
export function normaliseRequestPath (raw: string): NormalisedPath | RefusedPath {
  if (raw.length > MAX_PATH_LENGTH) return refuse(`longer than ${MAX_PATH_LENGTH} bytes`)
  if (!raw.startsWith('/')) return refuse('does not start with "/"')

  const parts = raw.split('/')
  const segments: string[] = []
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] as string
    if (part === '' && i < parts.length - 1) return refuse('empty segment ("//")')
    const decoded = decodeSegment(part)
    if (typeof decoded !== 'string') return decoded
    if (decoded === '.' || decoded === '..') return refuse('dot-segment')
    segments.push(decoded)
  }
  return { ok: true, path: '/' + segments.map(encodeURIComponent).join('/'), segments }
}

function refuse (reason: string): RefusedPath {
  return { ok: false, reason }
}

// ignoreBOM: by default the decoder would silently drop a leading U+FEFF, so
// `/%EF%BB%BFadmin` would decode to `admin`.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

const NON_ASCII = /[^\p{ASCII}]/u
const CONTROL = /\p{Cc}/u
const PATH_SYNTAX = /[/\\;%?#]/

function decodeSegment (raw: string): string | RefusedPath {
  if (!raw.includes('%')) {
    for (let i = 0; i < raw.length; i++) {
      const problem = rawCharProblem(raw.charCodeAt(i))
      if (problem !== undefined) return refuse(problem)
    }
    return raw
  }

  const bytes = new Uint8Array(raw.length)
  let length = 0
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i)
    if (code === 0x25) {
      const byte = hexByte(raw, i + 1)
      if (byte < 0) return refuse('malformed percent-encoding')
      const problem = escapedByteProblem(byte)
      if (problem !== undefined) return refuse(problem)
      bytes[length++] = byte
      i += 2
    } else {
      const problem = rawCharProblem(code)
      if (problem !== undefined) return refuse(problem)
      bytes[length++] = code
    }
  }

  let decoded: string
  try {
    decoded = utf8.decode(bytes.subarray(0, length))
  } catch {
    return refuse('percent-encoded bytes are not valid UTF-8')
  }
  if (NON_ASCII.test(decoded)) {
    const problem = unicodeProblem(decoded)
    if (problem !== undefined) return refuse(problem)
  }
  return decoded
}

// Raw characters must be printable ASCII: a raw non-ASCII byte reaches us
// through Node's latin1 reading of the request line, which is not what the
// client meant.
function rawCharProblem (code: number): string | undefined {
  if (code < 0x20 || code === 0x7F) return 'control character'
  if (code === 0x20) return 'space'
  if (code > 0x7E) return 'raw non-ASCII character (must be percent-encoded)'
  switch (code) {
    case 0x5C: return 'backslash'
    case 0x3B: return '";" path parameter'
    case 0x23: return '"#" in the path'
    case 0x3F: return '"?" in the path'
    default: return undefined
  }
}

function escapedByteProblem (byte: number): string | undefined {
  if (byte < 0x20 || byte === 0x7F) return 'percent-encoded control character'
  switch (byte) {
    case 0x2F: return 'percent-encoded "/" (%2F)'
    case 0x5C: return 'percent-encoded backslash (%5C)'
    case 0x2E: return 'percent-encoded "." (%2E)'
    case 0x3B: return 'percent-encoded ";" (%3B)'
    // Refusing every %25 is simpler than telling a literal "%" from a
    // double-encoded escape, and an API path never needs one.
    case 0x25: return 'percent-encoded "%" (%25): double encoding'
    default: return undefined
  }
}

// Some servers fold compatibility characters (NFKC) after we have matched,
// turning U+FF0F into "/" or U+2025 into "..": refuse anything that would
// become path syntax that way.
function unicodeProblem (decoded: string): string | undefined {
  if (CONTROL.test(decoded)) return 'control character'
  const folded = decoded.normalize('NFKC')
  if (folded === decoded) return undefined
  if (PATH_SYNTAX.test(folded) || CONTROL.test(folded) || folded === '.' || folded === '..') {
    return 'character that Unicode folding turns into path syntax'
  }
  return undefined
}

function hexByte (text: string, at: number): number {
  if (at + 2 > text.length) return -1
  const high = hexDigit(text.charCodeAt(at))
  const low = hexDigit(text.charCodeAt(at + 1))
  return high < 0 || low < 0 ? -1 : high * 16 + low
}

function hexDigit (code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x41 && code <= 0x46) return code - 0x37
  if (code >= 0x61 && code <= 0x66) return code - 0x57
  return -1
}

/**
 * The canonical path of a raw request target (path and query as on the wire).
 * @throws InvalidPath for anything but an origin-form target in canonical-able form
 * @throws UriTooLong past MAX_PATH_LENGTH
 */
export function canonicalPathOf (rawTarget: string): NormalisedPath {
  const queryAt = rawTarget.indexOf('?')
  const raw = queryAt === -1 ? rawTarget : rawTarget.slice(0, queryAt)
  if (raw.length > MAX_PATH_LENGTH) throw new UriTooLong()
  const path = normaliseRequestPath(raw)
  if (!path.ok) throw new InvalidPath()
  return path
}
