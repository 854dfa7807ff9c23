/**
 * The load generator's side of a contender whose requests carry many
 * sessions' cookies: every request goes out with the cookie of a session
 * picked for that request. Two contenders pick differently, through this one
 * way of sending: the many-users contenders (f) and (g) at random from a file
 * of N sessions (cookie-mix.ts), the refresh contender (i) from a rotation
 * whose sessions arrive over the run (cookie-rotation.ts).
 *
 * autocannon can build each request anew (`requests` with `setupRequest`), but
 * that costs its process about 12 µs of CPU per request here, close to what
 * the rest of a request costs it: on a 2-core machine shared with the
 * contender, that alone would put (f) and (g) several percent behind (b).
 * So each session's request is built once instead, as autocannon's own fixed
 * request with that session's cookie in place of a placeholder, and each
 * connection takes one of those per request: a pick and nothing else.
 */
import { readFileSync } from 'node:fs'
import type autocannon from 'autocannon'
import { createPicker, type CookieMix } from './cookie-mix.js'
import { createCookieRotation } from './cookie-rotation.js'
import type { CookieRotation } from './protocol.js'

/** Stands for the cookie in the request autocannon builds; replaced by each session's. */
export const COOKIE_PLACEHOLDER = 'bench-cookie-placeholder'

/** The one method of autocannon's client this relies on: it writes `this.getRequestBuffer()` for every request. */
interface RequestSource {
  getRequestBuffer (): Buffer
}

/** The cookies of one load run and how each request picks among them. */
export interface CookieSource {
  /**
   * Names the cookies when they stay the same from run to run (a many-users file): the requests
   * built for them are then kept for the next run. Absent: built for this run only.
   */
  reuseKey?: string
  /** `name=value` cookies, as the `cookie` request header carries them. */
  cookies (): readonly string[]
  /** Per request, the index in cookies() of the cookie it carries. */
  pick (count: number): () => number
}

/** Many users: the cookies of a file, picked at random by its mix. */
export function mixSource (mix: CookieMix): CookieSource {
  return {
    reuseKey: mix.file,
    cookies: () => readFileSync(mix.file, 'latin1').split('\n').filter(line => line !== ''),
    pick: count => createPicker(count, mix.distribution, mix.exponent),
  }
}

/** The refresh contender: sessions in use, and newcomers arriving over the run. */
export function rotationSource (rotation: CookieRotation): CookieSource & { readonly arrived: number } {
  const picker = createCookieRotation(rotation)
  return {
    cookies: () => picker.cookies,
    pick: () => picker.nextIndex,
    get arrived () { return picker.arrived },
  }
}

/** The last reusable cookies' requests: every slice of a many-users contender reuses them. */
let prepared: { key: string, requests: Buffer[] } | undefined

function sessionRequests (template: Buffer, source: CookieSource): Buffer[] {
  const text = template.toString('latin1')
  const [head, tail, more] = text.split(COOKIE_PLACEHOLDER)
  if (tail === undefined || more !== undefined) throw new Error('the request autocannon built does not carry the cookie placeholder once')
  const build = () => source.cookies().map(cookie => Buffer.from(`${head}${cookie}${tail}`, 'latin1'))
  if (source.reuseKey === undefined) return build()
  const key = `${source.reuseKey}\n${text}`
  if (prepared?.key !== key) prepared = { key, requests: build() }
  return prepared.requests
}

export interface SessionPerRequest {
  /** The headers to give autocannon: the job's, with the placeholder for the cookie. */
  readonly headers: Record<string, string>
  /** autocannon's `setupClient`: from then on the connection sends a picked session's request each time. */
  setupClient (client: autocannon.Client): void
  /** Requests sent with a picked session so far (fewer than autocannon counts means it no longer asks as it did). */
  readonly picks: number
}

export function sessionPerRequest (source: CookieSource, headers: Record<string, string>): SessionPerRequest {
  let requests: Buffer[] | undefined
  let pick: (() => number) | undefined
  let picks = 0
  return {
    headers: { ...headers, cookie: COOKIE_PLACEHOLDER },
    setupClient (client) {
      const connection = client as unknown as RequestSource
      // Every connection's template is the same request: build the sessions' requests and the picker once per run.
      requests ??= sessionRequests(connection.getRequestBuffer(), source)
      pick ??= source.pick(requests.length)
      const built = requests
      const next = pick
      connection.getRequestBuffer = () => {
        picks++
        return built[next()] as Buffer
      }
    },
    get picks () { return picks },
  }
}
