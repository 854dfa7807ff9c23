/**
 * The browser-facing contract in miniature, for the browser client's unit
 * tests: `/bff/user` with its CSRF token, `/bff/logout`, and any other path
 * answering `{ ok, path }` to a session (401 without, 403 `csrf` for an unsafe
 * request without the right token). Tests change `state` or script answers.
 */
import type { BffUser } from '../../src/user.js'
import { fakeFetch, json, problem, type FakeFetch, type Handler } from './fake-fetch.js'

export const ORIGIN = 'https://app.example.com'
export const IDP_LOGOUT_URL = 'https://idp.example.com/session/end?client_id=bff'

export function userNamed (sub: string, csrfToken: string): BffUser {
  return {
    sub,
    name: sub[0]!.toUpperCase() + sub.slice(1),
    email: `${sub}@example.com`,
    roles: ['user'],
    claims: { sub },
    csrfToken,
    expiresAt: '2030-01-01T12:00:00.000Z',
    idleExpiresAt: '2030-01-01T00:30:00.000Z',
  }
}

export interface BrowserGatewayState {
  /** The signed-in user's sub, or undefined for no session. */
  sub: string | undefined
  csrfToken: string
  /** Answers for `METHOD /path`, taking precedence over the defaults. */
  answers: Map<string, Handler>
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

export function browserGateway (): FakeFetch & { state: BrowserGatewayState } {
  const state: BrowserGatewayState = { sub: 'alice', csrfToken: 'csrf-1', answers: new Map() }
  const fake = fakeFetch((request) => {
    const key = `${request.method} ${request.url.pathname}`
    const scripted = state.answers.get(key)
    if (scripted) return scripted(request)
    if (state.sub === undefined) return problem(401, 'unauthenticated')
    if (key === 'GET /bff/user') return json(200, userNamed(state.sub, state.csrfToken))
    if (!SAFE.has(request.method) && request.headers.get('x-csrf-token') !== state.csrfToken) return problem(403, 'csrf')
    if (key === 'POST /bff/logout') {
      state.sub = undefined
      return json(200, { logoutUrl: IDP_LOGOUT_URL })
    }
    return json(200, { ok: true, path: request.url.pathname })
  })
  return { ...fake, state }
}
