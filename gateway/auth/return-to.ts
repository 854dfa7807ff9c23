export const MAX_RETURN_TO_LENGTH = 2048

export type ReturnTo = { ok: true, path: string } | { ok: false }

/**
 * Validates the `returnTo` of `/bff/login`: where the browser lands after the
 * callback, so anything that could leave the gateway's origin is refused.
 *
 * Absent or empty means `/`. Otherwise it must be printable ASCII (no
 * whitespace, control characters or Unicode lookalikes of `/`, `\` and `.`;
 * non-ASCII must be percent-encoded, as a `Location` header needs anyway),
 * start with exactly one `/`, hold no `\` anywhere and no `//` in its path,
 * and its path may not percent-encode `/`, `\`, `%` or control characters.
 * Query and fragment are kept (`/orders?x=1#y`); `//` is allowed there,
 * as in `/login?next=https://…`, because it cannot change the origin.
 *
 * @returns the path exactly as given when it is acceptable
 */
export function parseReturnTo (raw: string | undefined): ReturnTo {
  if (raw === undefined || raw === '') return { ok: true, path: '/' }
  return CHECKS.every((check) => check(raw)) ? { ok: true, path: raw } : { ok: false }
}

const PRINTABLE_ASCII = /^[!-~]+$/
const QUERY_OR_FRAGMENT = /[?#]/
const MALFORMED_ESCAPE = /%(?![0-9A-Fa-f]{2})/
// %2F and %5C could become separators when decoded later; %25 is double
// encoding; encoded controls (%09, %0A…) are the tab and newline tricks again.
const DANGEROUS_ESCAPE = /%(2f|5c|25|[01][0-9a-f]|7f)/i
const INVISIBLE = /[\p{White_Space}\p{Cc}\p{Cf}]/u
// Characters that look like, or are folded by some parsers (NFKC, IDNA) into,
// "/", "\" or ".". Several have no compatibility decomposition, hence the list.
const LOOKALIKE = /[\u2044\u2215\u2571\u2572\u27cb\u27cd\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c\u2024\u2025\u2026\u3002\ufe52\uff0e\uff61]/u
const FOLDS_TO_SEPARATOR = /[/\\.]/
const ASCII = /\p{ASCII}/gu

const CHECKS: ReadonlyArray<(raw: string) => boolean> = [
  (raw) => raw.length <= MAX_RETURN_TO_LENGTH,
  (raw) => PRINTABLE_ASCII.test(raw),
  (raw) => raw.startsWith('/') && !raw.startsWith('//') && !raw.startsWith('/\\'),
  (raw) => !raw.includes('\\'),
  (raw) => !pathPart(raw).includes('//'),
  (raw) => !MALFORMED_ESCAPE.test(raw),
  (raw) => !DANGEROUS_ESCAPE.test(pathPart(raw)),
  (raw) => hasHarmlessEncodedText(pathPart(raw)),
  staysOnOrigin,
]

function pathPart (raw: string): string {
  const end = raw.search(QUERY_OR_FRAGMENT)
  return end === -1 ? raw : raw.slice(0, end)
}

// Encoded non-ASCII in the path must be valid UTF-8 and must not decode to
// something a later decode-and-redirect in the browser app could misread.
function hasHarmlessEncodedText (path: string): boolean {
  if (!path.includes('%')) return true
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    return false
  }
  if (INVISIBLE.test(decoded) || LOOKALIKE.test(decoded)) return false
  const nonAscii = decoded.replace(ASCII, '')
  return !FOLDS_TO_SEPARATOR.test(nonAscii.normalize('NFKC'))
}

const PROBE_ORIGIN = 'http://gateway.invalid'

// The last word: however a URL parser reads it, it must stay on our origin.
function staysOnOrigin (raw: string): boolean {
  try {
    return new URL(raw, PROBE_ORIGIN).origin === PROBE_ORIGIN
  } catch {
    return false
  }
}
