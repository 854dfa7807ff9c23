/**
 * What the browser and the native client share: `user()`, `fetch()` that
 * turns 401s into events, and the JSON helpers. Each client brings `send`,
 * which puts its own credentials on a request (cookie + CSRF token, or
 * session credential + DPoP proof).
 */
import type { AuthState, AuthStateMachine, BffEvents } from './auth-state.js'
import { BffError, errorFrom } from './bff-error.js'
import type { Listener } from './events.js'
import { jsonCalls, type JsonCalls } from './json-calls.js'
import { isBffUser, type BffUser } from './user.js'

export type Send = (path: string, init?: RequestInit) => Promise<Response>

export interface BffClientCore extends JsonCalls {
  /** What the client knows now; replaced (never changed in place) on every `change` event. */
  readonly state: AuthState
  /** Subscribes to `signedIn`, `signedOut`, `stepUp` or `change`; returns the unsubscribe function. */
  on<K extends keyof BffEvents> (type: K, listener: Listener<BffEvents[K]>): () => void
  /** The signed-in user, or null (401). Other failures throw `BffError`. */
  user (): Promise<BffUser | null>
  /**
   * A request to a path on the gateway (`/api/orders`), with the client's
   * credentials. Resolves with every answer, like `fetch`; a 401 also emits
   * `signedOut` (or `stepUp` for `step_up_required`).
   */
  fetch (path: string, init?: RequestInit): Promise<Response>
}

export function createClientCore (auth: AuthStateMachine, send: Send): BffClientCore {
  async function fetch (path: string, init: RequestInit = {}): Promise<Response> {
    const response = await send(path, init)
    await auth.observe(response)
    return response
  }

  let pendingUser: Promise<BffUser | null> | undefined
  async function readUser (): Promise<BffUser | null> {
    const response = await fetch('/bff/user', { headers: { accept: 'application/json' } })
    if (response.status === 401) return null
    if (!response.ok) throw await errorFrom(response)
    const body: unknown = await response.json().catch(() => undefined)
    if (!isBffUser(body)) throw new BffError('invalid_response', '/bff/user answered without a user', response.status)
    auth.signedIn(body)
    // An answer about a session that ended while it was on its way is no user any more.
    return auth.current.status === 'signedIn' && auth.current.user === body ? body : null
  }

  return {
    get state () { return auth.current },
    on: auth.on,
    fetch,
    // Callers asking at the same moment (several components, the CSRF token) share one request.
    user () {
      pendingUser ??= readUser().finally(() => { pendingUser = undefined })
      return pendingUser
    },
    ...jsonCalls(fetch),
  }
}
