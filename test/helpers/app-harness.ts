/**
 * The real gateway for `inject` tests, as fastify/demo's test helper builds its
 * app: `buildApp` from gateway/app.ts with the configuration the environment
 * loader makes, on the memory store, never listening. The identity provider is
 * the real one (upstream-mock's oidc-provider), started in this process unless
 * a test points the gateway elsewhere.
 *
 * Sessions for tests that are about what happens after login are made by the
 * gateway's own session manager (`app.sessions.create`), exactly as its callback
 * makes them; the login itself is tested over inject against the IdP.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { loadConfig, type GatewayConfig } from '../../gateway/config.js'
import { parseRoutePolicy } from '../../gateway/proxy/route-policy.js'
import { buildApp, type Gateway } from '../../gateway/app.js'
import { startIdentityProvider, type IdentityProvider } from '../../upstream-mock/idp.js'
import { gatewayClient, TEST_ADMIN_TOKEN, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_SESSION_SECRET, type RoutePolicyJson } from './gateway.js'
import { HttpBrowser } from './http-browser.js'
import { authenticateAtIdp, type Credentials } from './login-flow.js'

/** Never listened on: inject needs no address, and the IdP only ever redirects the test's browser to it. */
export const HARNESS_PUBLIC_URL = 'https://app.example.test'

/** Where a policy sends requests when the test gives none: nothing listens on the discard port. */
const NO_UPSTREAM_POLICY: RoutePolicyJson = {
  routes: [{ prefix: '/api', upstream: 'http://127.0.0.1:9', allow: [{ methods: ['GET'], path: '/orders', roles: ['user'] }] }],
}

export interface AppHarnessOptions {
  policy?: RoutePolicyJson
  /** Extra environment for the configuration loader. */
  env?: Record<string, string>
  /** An issuer to use instead of starting the IdP (e.g. one that cannot be reached). */
  issuer?: string
}

export interface TestSession {
  /** A `Cookie` header value carrying the session cookie. */
  cookie: string
  csrfToken: string
  /** The session's public handle (its id in the device and admin APIs). */
  handle: string
}

export interface SessionFor {
  sub?: string
  roles?: string[]
  accessToken?: string
}

export interface StartedLogin {
  response: LightMyRequestResponse
  /** The IdP's authorization endpoint, with the gateway's parameters. */
  authorizationUrl: URL
  /** A `Cookie` header value carrying the login binding cookie the gateway set. */
  loginCookie: string
}

export interface AppHarness {
  gateway: Gateway
  /** The public listener's app: `app.inject(...)`. */
  app: FastifyInstance
  /** The operator listener's app. */
  admin: FastifyInstance
  config: GatewayConfig
  /** The in-process IdP, unless `issuer` was given. */
  idp: IdentityProvider | undefined
  sessionCookieName: string
  loginCookieName: string
  /** A signed-in user, made by the gateway's session manager. */
  signIn (user?: SessionFor): Promise<TestSession>
  /** Whether GET /bff/user with the session's cookie finds a session. */
  isSignedIn (session: Pick<TestSession, 'cookie'>): Promise<boolean>
  /** GET /bff/login (with `cookie`, if given), expecting the redirect to the IdP. */
  startLogin (query?: Record<string, string>, cookie?: string): Promise<StartedLogin>
  /** Signs in at the IdP from its authorization URL, as a browser would; the callback's path and query, not visited. */
  authenticate (authorizationUrl: URL, credentials?: Credentials): Promise<string>
  close (): Promise<void>
}

const ALICE: Credentials = { username: 'alice', password: 'alice-password' }

/** The `name=value` pair of a cookie the response set, for a later request's `Cookie` header. */
export function cookiePair (response: LightMyRequestResponse, name: string): string {
  const cookie = response.cookies.find(c => c.name === name)
  if (!cookie) throw new Error(`the response set no ${name} cookie`)
  return `${name}=${cookie.value}`
}

export async function startAppHarness (options: AppHarnessOptions = {}): Promise<AppHarness> {
  const idp = options.issuer === undefined
    ? await startIdentityProvider({ clients: [gatewayClient(HARNESS_PUBLIC_URL)] })
    : undefined
  const config = loadConfig({
    PUBLIC_URL: HARNESS_PUBLIC_URL,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SESSION_SECRET: TEST_SESSION_SECRET,
    SESSION_STORE: 'memory',
    OIDC_ISSUER: options.issuer ?? idp!.issuer,
    OIDC_CLIENT_ID: TEST_CLIENT_ID,
    OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
    // Required by the loader; the policy is handed to buildApp directly.
    ROUTES_FILE: 'inline policy (test/helpers/app-harness.ts)',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Test files sign in far more often than a person could; the limit has its own tests.
    LOGIN_RATE_LIMIT: '100000',
    ...options.env,
  })
  const policy = parseRoutePolicy(options.policy ?? NO_UPSTREAM_POLICY, 'test policy')
  const gateway = await buildApp(config, policy)
  await gateway.app.ready()
  await gateway.admin.ready()
  const { app } = gateway
  const sessionCookieName = config.cookie.name
  const loginCookieName = `${config.cookie.name}-login`

  return {
    gateway,
    app,
    admin: gateway.admin,
    config,
    idp,
    sessionCookieName,
    loginCookieName,
    async signIn ({ sub = 'alice', roles = ['user'], accessToken = `access-token-of-${sub}` } = {}) {
      const { session, cookieValue } = await app.sessions.create(
        // What inject's requests look like, so that session binding (when a test turns it on) sees the same client.
        { sub, ip: '127.0.0.1', userAgent: 'lightMyRequest' },
        { accessToken, refreshToken: `refresh-token-of-${sub}`, accessTokenExpiresAt: Date.now() + 3_600_000, claims: { sub, name: sub }, roles })
      return { cookie: `${sessionCookieName}=${cookieValue}`, csrfToken: session.secrets.csrfToken, handle: session.handle }
    },
    async isSignedIn ({ cookie }) {
      return (await app.inject({ url: '/bff/user', headers: { cookie } })).statusCode === 200
    },
    async startLogin (query = {}, cookie) {
      const response = await app.inject({ url: '/bff/login', query, ...(cookie ? { headers: { cookie } } : {}) })
      const location = response.headers.location
      if (response.statusCode !== 302 || typeof location !== 'string') {
        throw new Error(`/bff/login answered ${response.statusCode} ${response.body}`)
      }
      return { response, authorizationUrl: new URL(location), loginCookie: cookiePair(response, loginCookieName) }
    },
    async authenticate (authorizationUrl, credentials = ALICE) {
      const { callbackUrl } = await authenticateAtIdp(new HttpBrowser(), authorizationUrl.href, HARNESS_PUBLIC_URL, credentials)
      const url = new URL(callbackUrl)
      return `${url.pathname}${url.search}`
    },
    async close () {
      await gateway.close()
      await idp?.close()
    },
  }
}
