/**
 * Query strings, by hand for the same reason as gateway-url.ts: React
 * Native's `URLSearchParams` and `URL` are partial without a polyfill.
 */
export type QueryParams = Record<string, string | number | undefined>

export function toQuery (params: QueryParams): string {
  const pairs: string[] = []
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) pairs.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`)
  }
  return pairs.join('&')
}

function decode (text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return text
  }
}

/** The query parameters of a URL (first value wins), fragment ignored. */
export function queryOf (url: string): Record<string, string> {
  const params: Record<string, string> = Object.create(null)
  const start = url.indexOf('?')
  if (start === -1) return params
  const end = url.indexOf('#', start)
  for (const pair of url.slice(start + 1, end === -1 ? undefined : end).split('&')) {
    if (!pair) continue
    const equals = pair.indexOf('=')
    const name = decode(equals === -1 ? pair : pair.slice(0, equals))
    if (!(name in params)) params[name] = equals === -1 ? '' : decode(pair.slice(equals + 1))
  }
  return params
}
