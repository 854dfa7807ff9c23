/**
 * One full sign-in, two ways, driven exactly like a browser with the test
 * suite's HttpBrowser (a fresh cookie jar each time, so the IdP asks for the
 * password every time):
 *
 * - through the gateway: GET /bff/login → the IdP's authorization endpoint →
 *   its login form → POST credentials → consent (granted without a page) →
 *   /bff/callback (the gateway exchanges the code and validates the ID token)
 *   → session cookie; then GET /api/orders with it, which must answer the
 *   stub's body: the proof that the session works;
 * - directly at the IdP, by a plain OIDC client (openid-client, as the
 *   gateway uses): the same authorization request (scope, resource, PKCE,
 *   state, nonce), the same pages, then the code exchange at the token
 *   endpoint with the ID token validated. The IdP's own limit.
 */
import * as client from 'openid-client'
import { HttpBrowser } from '../test/helpers/http-browser.js'
import { loginThroughIdp, type Credentials } from '../test/helpers/login-flow.js'
import { MockRelyingParty, RP_SCOPE } from '../test/helpers/mock-relying-party.js'
import { ORDERS_BODY } from './protocol.js'

export const BENCH_USER: Credentials = { username: 'alice', password: 'alice-password' }
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) bff-bench'
const SESSION_COOKIE = 'bff'

/** The plain OIDC client of the direct sign-ins: registered at the IdP beside the gateway. */
export interface DirectClient {
  issuer: string
  clientId: string
  clientSecret: string
  /** Registered, never visited: the code is taken from the IdP's redirect. */
  redirectUri: string
  /** The API's resource indicator, as the gateway's OIDC_AUTH_PARAMS names it. */
  resource: string
}

export const DIRECT_CLIENT_ID = 'bench-direct-client'
export const DIRECT_REDIRECT_URI = 'http://127.0.0.1:9/callback'

/** Signs in through the gateway and proves the session with one API call; returns the session cookie (`bff=…`). */
export async function signInThroughGateway (gatewayUrl: string, credentials: Credentials = BENCH_USER): Promise<string> {
  const browser = new HttpBrowser({ userAgent: USER_AGENT })
  await loginThroughIdp(browser, gatewayUrl, credentials)
  const cookie = browser.cookie(`${gatewayUrl}/api/orders`, SESSION_COOKIE)
  if (!cookie) throw new Error(`the gateway set no "${SESSION_COOKIE}" session cookie at login`)
  const response = await browser.fetch(`${gatewayUrl}/api/orders`, { headers: { accept: 'application/json' } })
  const body = await response.text()
  if (response.status !== 200 || body !== ORDERS_BODY) {
    throw new Error(`the new session's GET /api/orders answered ${response.status} ${body.slice(0, 200)}`)
  }
  return `${cookie.name}=${cookie.value}`
}

/** Discovers the IdP once; the function it returns runs one direct sign-in. */
export async function directSignIn (target: DirectClient, credentials: Credentials = BENCH_USER): Promise<() => Promise<void>> {
  const config = await client.discovery(new URL(target.issuer), target.clientId, undefined, client.ClientSecretBasic(target.clientSecret), {
    execute: [client.allowInsecureRequests],
  })
  const relyingParty = new MockRelyingParty(config, target.redirectUri)
  return async () => {
    const { tokens } = await relyingParty.signIn(credentials, {
      params: { scope: RP_SCOPE, resource: target.resource },
      tokenParams: { resource: target.resource },
    })
    if (!tokens.access_token || !tokens.refresh_token || !tokens.id_token) throw new Error('the code exchange returned no access, refresh or ID token')
  }
}
