/**
 * The load generator's side of a many-users contender: every request goes
 * out with the cookie of a session picked for that request (cookie-mix.ts).
 *
 * autocannon can build each request anew (`requests` with `setupRequest`), but
 * that costs its process about 12 µs of CPU per request here, close to what
 * the rest of a request costs it: on a 2-core machine shared with the
 * contender, that alone would put (f) and (g) several percent behind (b).
 * So each session's request is built once instead, as autocannon's own fixed
 * request with that session's cookie in place of a placeholder, and each
 * connection takes one of those per request: a random pick and nothing else.
 */
import { readFileSync } from 'node:fs'
import type autocannon from 'autocannon'
import { createPicker, type CookieMix } from './cookie-mix.js'

/** Stands for the cookie in the request autocannon builds; replaced by each session's. */
export const COOKIE_PLACEHOLDER = 'bench-cookie-placeholder'

/** The one method of autocannon's client this relies on: it writes `this.getRequestBuffer()` for every request. */
interface RequestSource {
  getRequestBuffer (): Buffer
}

/** The last file's requests: every slice of a many-users contender reuses them. */
let prepared: { key: string, requests: Buffer[] } | undefined

function sessionRequests (template: Buffer, file: string): Buffer[] {
  const text = template.toString('latin1')
  const [head, tail, more] = text.split(COOKIE_PLACEHOLDER)
  if (tail === undefined || more !== undefined) throw new Error('the request autocannon built does not carry the cookie placeholder once')
  const key = `${file}\n${text}`
  if (prepared?.key !== key) {
    const cookies = readFileSync(file, 'latin1').split('\n').filter(line => line !== '')
    prepared = { key, requests: cookies.map(cookie => Buffer.from(`${head}${cookie}${tail}`, 'latin1')) }
  }
  return prepared.requests
}

export interface SessionPerRequest {
  /** autocannon's `setupClient`: from then on the connection sends a picked session's request each time. */
  setupClient (client: autocannon.Client): void
  /** Requests sent with a picked session so far (none would mean autocannon no longer asks as it did). */
  readonly picks: number
}

export function sessionPerRequest (mix: CookieMix, headers: Record<string, string>): { headers: Record<string, string> } & SessionPerRequest {
  let pick: (() => number) | undefined
  let picks = 0
  return {
    headers: { ...headers, cookie: COOKIE_PLACEHOLDER },
    setupClient (client) {
      const source = client as unknown as RequestSource
      const requests = sessionRequests(source.getRequestBuffer(), mix.file)
      pick ??= createPicker(requests.length, mix.distribution, mix.exponent)
      const next = pick
      source.getRequestBuffer = () => {
        picks++
        return requests[next()] as Buffer
      }
    },
    get picks () { return picks },
  }
}
