/**
 * The React Native client. The app brings the platform pieces: the system
 * browser for the login (`openAuthSession`), a key store that signs without
 * exporting its key, and a secure store for the session credential. The app
 * never holds an IdP token: only an opaque credential bound to its key, sent
 * as `Authorization: Session …` with a fresh DPoP proof on every call.
 */
import { createAuthState } from './auth-state.js'
import { BffError, errorFrom } from './bff-error.js'
import { createClientCore, type BffClientCore } from './client-core.js'
import { createDpopSigner, type DpopKeyStore } from './dpop.js'
import { gatewayOrigin, gatewayUrl } from './gateway-url.js'
import type { LoginOptions } from './login-options.js'
import { nativeLoginUrl, readNativeRedirect, type NativeRedirect } from './native-login.js'
import { createPkce, randomToken } from './pkce.js'
import { webPlatformCrypto, type PlatformCrypto } from './platform-crypto.js'
import type { SecureStore } from './secure-store.js'
import { createSessionCredential, isNativeSession } from './session-credential.js'
import type { SilentLoginResult } from './silent-login.js'
import type { BffUser } from './user.js'

export * from './shared-api.js'
export { derToJoseSignature } from './der-signature.js'
export type { DpopKeyStore, PublicJwk } from './dpop.js'
export type { PlatformCrypto } from './platform-crypto.js'
export { createMemorySecureStore, type SecureStore } from './secure-store.js'
export type { NativeSession } from './session-credential.js'
export { createWebCryptoKeyStore, type WebCryptoKeyStore, type WebCryptoKeyStoreOptions } from './webcrypto-key-store.js'

/** The redirect URL; nothing when the user closed the browser; or expo-web-browser's `{ type, url }`. */
export type AuthSessionResult = string | null | undefined | { type: string, url?: string }

/**
 * Opens `url` in the system browser (ASWebAuthenticationSession, Custom Tabs)
 * until it navigates to `redirectUri`; resolves with that URL, or with
 * nothing when the user closed it. expo-web-browser's `openAuthSessionAsync`
 * fits as it is (its `{ type, url }` result is understood).
 */
export type OpenAuthSession = (url: string, redirectUri: string) => Promise<AuthSessionResult>

export interface NativeBffClientOptions {
  /** The gateway's origin (`PUBLIC_URL`). */
  baseUrl: string
  /** One of the gateway's `NATIVE_REDIRECT_URIS`, exactly. */
  redirectUri: string
  openAuthSession: OpenAuthSession
  keyStore: DpopKeyStore
  secureStore: SecureStore
  /** Shown in the user's device list (≤ 64 printable characters). */
  deviceName?: string
  /** Default: WebCrypto's `getRandomValues` and SHA-256. */
  crypto?: PlatformCrypto
  /** Default: the global `fetch`. */
  fetch?: typeof fetch
  /** The secure store's key for the credential. Default `bff.session`. */
  storageKey?: string
}

export interface NativeBffClient extends BffClientCore {
  /** Signs in through the system browser; resolves with the user, or throws `BffError` (`login_cancelled`, `state_mismatch`, the gateway's `error=`, …). */
  login (options?: LoginOptions): Promise<BffUser>
  /** Ends the session (`POST /bff/logout`) and forgets the credential. `logoutUrl`: open it to end the IdP's session too. */
  logout (): Promise<{ logoutUrl: string | null }>
  /** The user when signed in already; else `login({ prompt: 'none' })`, reporting `login_required` & co. instead of throwing them. */
  silentLogin (options?: Omit<LoginOptions, 'prompt'>): Promise<SilentLoginResult>
}

const redirectUrlOf = (result: AuthSessionResult): string | undefined =>
  typeof result === 'string' ? result : result?.type === 'success' ? result.url : undefined

/** Creates the native client for a gateway. */
export function createNativeBffClient (options: NativeBffClientOptions): NativeBffClient {
  const origin = gatewayOrigin(options.baseUrl)
  const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const crypto = options.crypto ?? webPlatformCrypto()
  const dpop = createDpopSigner(options.keyStore, crypto)
  const credential = createSessionCredential(options.secureStore, options.storageKey ?? 'bff.session')
  const auth = createAuthState(origin)

  async function send (path: string, init: RequestInit = {}): Promise<Response> {
    const url = gatewayUrl(origin, path)
    const method = (init.method ?? 'GET').toUpperCase()
    const headers = new Headers(init.headers)
    const used = await credential.get()
    // Without a credential the request goes out anonymous: routes of type none, client or user-optional still answer.
    if (used) {
      headers.set('authorization', `Session ${used.session}`)
      headers.set('dpop', await dpop.proof({ method, htu: url.htu }))
    }
    // Never a cookie: the gateway does not take native sessions from one.
    const response = await fetchImpl(url.href, { ...init, method, headers, credentials: 'omit' })
    if (used && response.status === 401) {
      const { code } = await errorFrom(response)
      if (code !== 'step_up_required') await credential.clear(used.session)
    }
    return response
  }

  const core = createClientCore(auth, send)
  const gatewayUser = core.user

  /** The system-browser half of a login: a handoff code, or why there is none. */
  async function authorize (loginOptions: LoginOptions): Promise<{ code: string, verifier: string } | { error: string }> {
    const pkce = await createPkce(crypto)
    const state = randomToken(crypto)
    const url = nativeLoginUrl(origin, { redirectUri: options.redirectUri, codeChallenge: pkce.challenge, state }, loginOptions)
    const redirectUrl = redirectUrlOf(await options.openAuthSession(url, options.redirectUri))
    if (!redirectUrl) return { error: 'login_cancelled' }
    const redirect: NativeRedirect = readNativeRedirect(redirectUrl, options.redirectUri, state)
    return 'code' in redirect ? { code: redirect.code, verifier: pkce.verifier } : { error: redirect.error }
  }

  /** The handoff code and its verifier, with a proof of the key the session will be bound to, for the credential. */
  async function redeem (code: string, verifier: string): Promise<BffUser> {
    const url = gatewayUrl(origin, '/bff/native/session')
    const body = { code, code_verifier: verifier, ...(options.deviceName !== undefined ? { deviceName: options.deviceName } : {}) }
    const response = await fetchImpl(url.href, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', dpop: await dpop.proof({ method: 'POST', htu: url.htu }) },
      body: JSON.stringify(body),
      credentials: 'omit',
    })
    if (!response.ok) throw await errorFrom(response)
    const session: unknown = await response.json().catch(() => undefined)
    if (!isNativeSession(session)) throw new BffError('invalid_response', '/bff/native/session answered without a session', response.status)
    await credential.set(session)
    const user = await gatewayUser()
    if (!user) throw new BffError('unauthenticated', 'the gateway refused the new session', 401)
    return user
  }

  async function login (loginOptions: LoginOptions = {}): Promise<BffUser> {
    const outcome = await authorize(loginOptions)
    if ('error' in outcome) throw new BffError(outcome.error, `the sign-in ended with ${outcome.error}`)
    return redeem(outcome.code, outcome.verifier)
  }

  return Object.assign(core, {
    async user () {
      if (await credential.get()) return gatewayUser()
      auth.signedOut('unauthenticated')
      return null
    },
    login,
    async logout () {
      const used = await credential.get()
      let logoutUrl: string | null = null
      if (used) {
        const response = await send('/bff/logout', { method: 'POST', headers: { accept: 'application/json' } })
        // 401: the session had already ended; anything else leaves the credential, so a retry can still end it.
        if (!response.ok && response.status !== 401) throw await errorFrom(response)
        const body = response.ok ? await response.json().catch(() => ({})) as { logoutUrl?: unknown } : {}
        if (typeof body.logoutUrl === 'string') logoutUrl = body.logoutUrl
        await credential.clear(used.session)
      }
      auth.signedOut('logout')
      return { logoutUrl }
    },
    async silentLogin (loginOptions: Omit<LoginOptions, 'prompt'> = {}): Promise<SilentLoginResult> {
      const current = await credential.get() ? await gatewayUser() : null
      if (current) return { signedIn: true, user: current }
      const outcome = await authorize({ ...loginOptions, prompt: 'none' })
      if ('error' in outcome) return { signedIn: false, error: outcome.error }
      return { signedIn: true, user: await redeem(outcome.code, outcome.verifier) }
    },
  })
}
