/**
 * What the client believes about the session, and the events that announce
 * each change. Both clients feed it from the gateway's answers: a user from
 * `/bff/user`, a 401 from any call.
 */
import { errorBodyOf } from './bff-error.js'
import { createEmitter, type Listener } from './events.js'
import { loginOptionsFrom, type LoginOptions } from './login-options.js'
import type { BffUser } from './user.js'

export type AuthState =
  | { status: 'unknown' }
  | { status: 'signedIn', user: BffUser }
  | { status: 'signedOut', reason: string }

export interface SignedInEvent {
  user: BffUser
  /** True when another tab of this browser signed in (browser client only). */
  fromOtherTab: boolean
}

export interface SignedOutEvent {
  /**
   * Why: `logout`, or the gateway's 401 code (`unauthenticated`,
   * `session_expired`, `invalid_dpop_proof`, …).
   */
  reason: string
  fromOtherTab: boolean
}

export interface StepUpEvent {
  /** The gateway's `/bff/login` URL for the stronger login, made absolute. */
  loginUrl: string
  message: string
  /** The same as options for `login()`: what the route needs (`acrValues`, `maxAge`). */
  login: LoginOptions
}

export interface BffEvents {
  /** The client learnt that a user is signed in, or that another user now is. */
  signedIn: SignedInEvent
  /** The client learnt that nobody is signed in any more (or at all). */
  signedOut: SignedOutEvent
  /** A call was refused with 401 `step_up_required`; the session itself is still good. */
  stepUp: StepUpEvent
  /** `state` was replaced (every signedIn / signedOut, and fresher data about the same user). */
  change: AuthState
}

export interface AuthStateMachine {
  readonly current: AuthState
  on<K extends keyof BffEvents> (type: K, listener: Listener<BffEvents[K]>): () => void
  /** Records a signed-in user (unless its session is known to have ended); true when that is news (an event was emitted). */
  signedIn (user: BffUser, fromOtherTab?: boolean): boolean
  /** Records that nobody is signed in; true when that is news. */
  signedOut (reason: string, fromOtherTab?: boolean): boolean
  /** Turns a 401 into a `stepUp` event or into the signed-out state. */
  observe (response: Response): Promise<void>
}

export function createAuthState (origin: string): AuthStateMachine {
  const events = createEmitter<BffEvents>()
  let current: AuthState = { status: 'unknown' }
  const replace = (next: AuthState) => {
    current = next
    events.emit('change', next)
  }
  // The CSRF tokens of browser sessions known to have ended (one per session). News of such a session
  // is stale: an answer that was in flight when it ended, or another tab's message from before.
  const ended = new Set<string>()
  const signedIn = (user: BffUser, fromOtherTab = false) => {
    if (user.csrfToken !== undefined && ended.has(user.csrfToken)) return false
    const news = current.status !== 'signedIn' || current.user.sub !== user.sub
    replace({ status: 'signedIn', user })
    if (news) events.emit('signedIn', { user, fromOtherTab })
    return news
  }
  const signedOut = (reason: string, fromOtherTab = false) => {
    if (current.status === 'signedIn' && current.user.csrfToken !== undefined) ended.add(current.user.csrfToken)
    if (current.status === 'signedOut') return false
    replace({ status: 'signedOut', reason })
    events.emit('signedOut', { reason, fromOtherTab })
    return true
  }

  return {
    get current () { return current },
    on: events.on,
    signedIn,
    signedOut,
    async observe (response) {
      if (response.status !== 401) return
      const body = await errorBodyOf(response)
      if (body.error === 'step_up_required' && typeof body.loginUrl === 'string') {
        const loginUrl = body.loginUrl.startsWith('/') ? origin + body.loginUrl : body.loginUrl
        events.emit('stepUp', { loginUrl, message: body.message ?? '', login: loginOptionsFrom(loginUrl) })
        return
      }
      signedOut(body.error ?? 'unauthenticated')
    },
  }
}
