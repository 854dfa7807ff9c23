/**
 * A signed-in user for tests that are about what happens after login.
 */
import { HttpBrowser } from './http-browser.js'
import { loginThroughIdp } from './login-flow.js'

const BROWSER_USER_AGENT = 'Mozilla/5.0 (HttpBrowser; test)'

export interface SignedInUser {
  browser: HttpBrowser
  /** `Cookie` header value carrying the session cookie, for raw fetches to any instance. */
  cookie: string
  /** The browser's User-Agent, to send with raw fetches that should look like this browser. */
  userAgent: string
  csrfToken: string
}

export async function signIn (gatewayUrl: string, username = 'alice', password = `${username}-password`): Promise<SignedInUser> {
  // Cookies by host, as real browsers keep them: gateway instances on other ports of the same
  // host stand in for instances behind one load balancer.
  const browser = new HttpBrowser({ cookieScope: 'host', userAgent: BROWSER_USER_AGENT })
  await loginThroughIdp(browser, gatewayUrl, { username, password })
  const response = await browser.fetch(`${gatewayUrl}/bff/user`)
  if (response.status !== 200) throw new Error(`/bff/user answered ${response.status} right after login`)
  const { csrfToken } = await response.json() as { csrfToken: string }
  return { browser, cookie: browser.cookieHeader(gatewayUrl), csrfToken, userAgent: BROWSER_USER_AGENT }
}

/** Resolves once `ms` have passed: for waiting out a token lifetime, where time itself is the event. */
export const waitFor = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
