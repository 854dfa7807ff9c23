/**
 * The login transaction between `/bff/login` and `/bff/callback`.
 *
 * Kept server-side under its `state`, readable once, and bound to the browser
 * that started it: a random binding value in a short-lived HttpOnly cookie,
 * whose hash the transaction records. A callback URL replayed in another
 * browser, or forced on a victim (login CSRF), finds no matching binding.
 * One binding cookie serves every login a browser has in flight (several tabs).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { LoginStates } from '../session/store.js'
import type { LoginChallenge } from './oidc-client.js'
import type { NativeLoginRequest } from './native-login.js'

export const LOGIN_STATE_TTL_SECONDS = 600

interface StoredLogin extends LoginChallenge {
  binding: string
  returnTo: string
  native?: NativeLoginRequest
  silent?: true
}

export interface PendingLogin {
  challenge: LoginChallenge
  returnTo: string
  /** Set when a native app started the login: the callback hands off to it instead of setting a cookie. */
  native?: NativeLoginRequest
  /** Started with `prompt=none`: the IdP's "cannot do that silently" goes back to `returnTo`. */
  silent: boolean
}

const hash = (value: string) => createHash('sha256').update(value).digest('base64url')
const BINDING = /^[A-Za-z0-9_-]{43}$/

/** The browser's binding value from its cookie, or a fresh one. */
export function bindingFor (cookieValue: string | undefined): string {
  return cookieValue && BINDING.test(cookieValue) ? cookieValue : randomBytes(32).toString('base64url')
}

export async function savePendingLogin (store: LoginStates, binding: string, challenge: LoginChallenge, returnTo: string, kind: { native?: NativeLoginRequest, silent?: boolean } = {}): Promise<void> {
  const stored: StoredLogin = { ...challenge, binding: hash(binding), returnTo, ...(kind.native ? { native: kind.native } : {}), ...(kind.silent ? { silent: true } : {}) }
  await store.saveLoginState(challenge.state, JSON.stringify(stored), LOGIN_STATE_TTL_SECONDS * 1000)
}

/** Takes (and so consumes) the login for `state`, if this browser started it. */
export async function takePendingLogin (store: LoginStates, state: string, binding: string | undefined): Promise<PendingLogin | undefined> {
  if (!state || state.length > 200) return undefined
  const raw = await store.takeLoginState(state)
  if (!raw || !binding) return undefined
  const stored = JSON.parse(raw) as StoredLogin
  const expected = Buffer.from(stored.binding)
  const given = Buffer.from(hash(binding))
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined
  return {
    challenge: { state: stored.state, nonce: stored.nonce, codeVerifier: stored.codeVerifier },
    returnTo: stored.returnTo,
    ...(stored.native ? { native: stored.native } : {}),
    silent: stored.silent === true,
  }
}
