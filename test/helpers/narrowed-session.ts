/**
 * A realistic session for measuring what one costs Redis: a real login through
 * the mock IdP from a real browser's User-Agent, then one request to each of
 * two APIs whose routes narrow the user's token to their own audience
 * (RFC 8707, by refresh), one of them DPoP-bound (RFC 9449). The session then
 * holds its own access and refresh tokens, two narrowed access tokens, the
 * audiences the login asked for and a DPoP key pair.
 */
import { HttpBrowser } from './http-browser.js'
import { loginThroughIdp } from './login-flow.js'
import { startStack, type Stack } from './stack.js'

export const ORDERS_AUDIENCE = 'https://orders.test.example'
export const BILLING_AUDIENCE = 'https://billing.test.example'

/** A current desktop Chrome's User-Agent (111 characters): the gateway keeps it in the session's clear `meta`. */
export const DESKTOP_CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'

/** The gateway, the IdP and two APIs with their own audiences (billing demands DPoP), on a private redis-server. */
export function startNarrowedStack (): Promise<Stack> {
  return startStack({
    apis: {
      orders: { audience: ORDERS_AUDIENCE, scopes: ['orders:read'] },
      billing: { audience: BILLING_AUDIENCE, scopes: ['billing:read'], dpop: { required: true } },
    },
    gatewayEnv: { OIDC_SCOPES: 'openid profile email offline_access orders:read billing:read' },
    policy: (_upstream, apis) => ({
      routes: [
        {
          prefix: '/orders',
          upstream: apis.orders!.url,
          token: { type: 'user', audience: ORDERS_AUDIENCE },
          allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }],
        },
        {
          prefix: '/billing',
          upstream: apis.billing!.url,
          token: { type: 'user', audience: BILLING_AUDIENCE, dpop: true },
          allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }],
        },
      ],
    }),
  })
}

/** Signs in and fetches both narrowed tokens; returns the browser's `Cookie` header for the gateway. */
export async function signInWithNarrowedTokens (stack: Stack, username = 'alice'): Promise<string> {
  const browser = new HttpBrowser({ cookieScope: 'host', userAgent: DESKTOP_CHROME })
  await loginThroughIdp(browser, stack.publicUrl, { username, password: `${username}-password` })
  for (const path of ['/orders/me', '/billing/me']) {
    const response = await browser.fetch(`${stack.publicUrl}${path}`)
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}`)
  }
  return browser.cookieHeader(stack.publicUrl)
}
