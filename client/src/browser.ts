/**
 * The browser client: the session cookie travels by itself; this adds the
 * CSRF token to changes, turns 401s into events, shares sign-in state across
 * tabs and drives login, silent login and logout.
 */
import { createAuthState } from './auth-state.js'
import { errorBodyOf, errorFrom } from './bff-error.js'
import { createClientCore, type BffClientCore } from './client-core.js'
import { createCsrfToken } from './csrf-token.js'
import { gatewayOrigin, gatewayUrl } from './gateway-url.js'
import { loginParams, type LoginOptions } from './login-options.js'
import { toQuery } from './query.js'
import { markReturnTo, silentLoginAnswer, type SilentLoginResult } from './silent-login.js'
import { shareAcrossTabs } from './tab-sync.js'

export * from './shared-api.js'

/** The parts of `window` the client navigates with (a fake one in tests). */
export interface PageWindow {
  location: { readonly href: string, assign (url: string): void }
  history: { readonly state: unknown, replaceState (data: unknown, unused: string, url?: string | null): void }
}

export interface BffClientOptions {
  /** The gateway's origin (`PUBLIC_URL`). Default: the page's origin. */
  baseUrl?: string
  /** Default: the global `fetch`. */
  fetch?: typeof fetch
  /** The `BroadcastChannel` tabs share sign-in state on; `false` turns sharing off. Default `bff-gateway`. */
  channelName?: string | false
  /** Default: the global `window`. */
  window?: PageWindow
}

export interface BrowserLoginOptions extends LoginOptions {
  /** A path on the gateway's origin to come back to. Default: the current page. */
  returnTo?: string
}

export interface BffClient extends BffClientCore {
  /** The `/bff/login` URL for these options (for a link). */
  loginUrl (options?: BrowserLoginOptions): string
  /** Leaves the page for the gateway's login. */
  login (options?: BrowserLoginOptions): void
  /**
   * Ends the session everywhere (`POST /bff/logout`) and tells the other tabs.
   * `logoutUrl` is the IdP's end-session URL: go there to end the IdP's session too.
   */
  logout (): Promise<{ logoutUrl: string | null }>
  /**
   * Signs in without showing anything, if the IdP still has a session.
   * Resolves at once when the gateway already has one. Otherwise it leaves
   * the page (`prompt=none`, redirects only, back to `returnTo`) and never
   * settles; on the load that comes back it resolves with the user or with
   * the IdP's reason (`login_required`, …). Call it once per page load.
   */
  silentLogin (options?: Omit<BrowserLoginOptions, 'prompt'>): Promise<SilentLoginResult>
  /** Stops listening to the other tabs. */
  close (): void
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Creates the browser client for a gateway. */
export function createBffClient (options: BffClientOptions = {}): BffClient {
  const page = options.window ?? (globalThis as unknown as { window: PageWindow }).window
  const origin = gatewayOrigin(options.baseUrl ?? new URL(page.location.href).origin)
  const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const auth = createAuthState(origin)

  async function send (path: string, init: RequestInit = {}, retried = false): Promise<Response> {
    const { href } = gatewayUrl(origin, path)
    const unsafe = !SAFE_METHODS.has((init.method ?? 'GET').toUpperCase())
    const headers = new Headers(init.headers)
    const token = unsafe ? await csrf.current() : undefined
    if (token !== undefined) headers.set('x-csrf-token', token)
    const response = await fetchImpl(href, { credentials: 'include', ...init, headers })
    // A token from before a new login (here or in a tab we did not hear from) gets one retry with a fresh one.
    if (unsafe && !retried && response.status === 403 && (await errorBodyOf(response)).error === 'csrf') {
      if (await csrf.replacing(token) !== undefined) return send(path, init, true)
    }
    return response
  }

  const core = createClientCore(auth, send)
  const csrf = createCsrfToken(() => auth.current, core.user)
  const stopSharing = options.channelName === false ? () => {} : shareAcrossTabs(auth, options.channelName ?? 'bff-gateway')

  const currentPage = () => {
    const url = new URL(page.location.href)
    return url.pathname + url.search + url.hash
  }
  const loginUrl = ({ returnTo, ...rest }: BrowserLoginOptions = {}) =>
    `${origin}/bff/login?${toQuery({ returnTo: returnTo ?? currentPage(), ...loginParams(rest) })}`

  return Object.assign(core, {
    loginUrl,
    login (loginOptions?: BrowserLoginOptions) {
      page.location.assign(loginUrl(loginOptions))
    },
    async logout () {
      const response = await send('/bff/logout', { method: 'POST', headers: { accept: 'application/json' } })
      // 401: the session had already ended; the user is signed out either way.
      if (!response.ok && response.status !== 401) throw await errorFrom(response)
      const body = response.ok ? await response.json().catch(() => ({})) as { logoutUrl?: unknown } : {}
      auth.signedOut('logout')
      return { logoutUrl: typeof body.logoutUrl === 'string' ? body.logoutUrl : null }
    },
    async silentLogin (loginOptions: Omit<BrowserLoginOptions, 'prompt'> = {}): Promise<SilentLoginResult> {
      const answer = silentLoginAnswer(page.location.href)
      if (answer) page.history.replaceState(page.history.state, '', answer.cleanUrl)
      // The session decides, not the query: a crafted link cannot fake either outcome.
      const user = await core.user()
      if (user) return { signedIn: true, user }
      if (answer) return { signedIn: false, error: answer.error ?? 'login_required' }
      const returnTo = markReturnTo(loginOptions.returnTo ?? currentPage())
      page.location.assign(loginUrl({ ...loginOptions, returnTo, prompt: 'none' }))
      return new Promise(() => {})
    },
    close: stopSharing,
  })
}
