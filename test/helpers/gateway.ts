/**
 * Starts a real gateway, configured through the same environment loader the
 * process uses, on a chosen port (the IdP must know its redirect URI first).
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, type GatewayConfig } from '../../gateway/config.js'
import { loadRoutePolicy, type RoutePolicy } from '../../gateway/proxy/route-policy.js'
import type { IdpClient } from '../../upstream-mock/idp.js'
import { buildApp, type Gateway, type GatewayDeps } from '../../gateway/app.js'
import { freePort } from './free-port.js'

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789-abcdefghijkl'
export const TEST_SESSION_SECRET = 'test-session-secret-0123456789-abcdefghij'
export const TEST_CLIENT_ID = 'bff-gateway'
export const TEST_CLIENT_SECRET = 'test-client-secret-0123456789-abcdefghij'

/** The gateway's registration at the test IdP, for a gateway (or instances behind one URL) at `publicUrl`. */
export function gatewayClient (publicUrl: string): IdpClient {
  return {
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    redirectUris: [`${publicUrl}/bff/callback`],
    postLogoutRedirectUris: [`${publicUrl}/`],
    backchannelLogoutUri: `${publicUrl}/bff/backchannel-logout`,
  }
}

/** Where a gateway process listens and what it talks to: the rest of its environment is the tests' own. */
export interface GatewayProcessAddresses {
  publicUrl: string
  port: number
  adminPort: number
  redisUrl: string
  issuer: string
  routesFile: string
  logLevel: string
}

/**
 * The environment of a gateway process on loopback with the test client, secret and admin token
 * (test/faults, bench): the one place these variables are put together for a child process.
 */
export function gatewayProcessEnv (addresses: GatewayProcessAddresses): Record<string, string> {
  return {
    PUBLIC_URL: addresses.publicUrl,
    HOST: '127.0.0.1',
    PORT: String(addresses.port),
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: String(addresses.adminPort),
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SESSION_SECRET: TEST_SESSION_SECRET,
    REDIS_URL: addresses.redisUrl,
    OIDC_ISSUER: addresses.issuer,
    OIDC_CLIENT_ID: TEST_CLIENT_ID,
    OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
    ROUTES_FILE: addresses.routesFile,
    LOG_LEVEL: addresses.logLevel,
  }
}

export interface RoutePolicyJson {
  routes: Array<Record<string, unknown>>
}

/**
 * `/api/echo/:thing` (the API reflects what it received) for the given methods, plus
 * `GET /api/orders`, for any user with role `user`: the policy the hardening tests probe.
 */
export function echoPolicy (methods: readonly string[]): (upstream: string) => RoutePolicyJson {
  return (upstream) => ({
    routes: [{
      prefix: '/api',
      upstream,
      allow: [
        { methods: [...methods], path: '/echo/:thing', roles: ['user'] },
        { methods: ['GET'], path: '/orders', roles: ['user'] },
      ],
    }],
  })
}

/** The contract's example policy, pointed at one upstream, plus `/me` for claim checks. */
export function examplePolicy (upstream: string): RoutePolicyJson {
  return {
    routes: [{
      prefix: '/api',
      upstream,
      rewritePrefix: '',
      allow: [
        { methods: ['GET'], path: '/orders', roles: ['user'] },
        { methods: ['GET'], path: '/orders/:id', roles: ['user'] },
        { methods: ['POST'], path: '/orders', roles: ['user'] },
        { methods: ['GET'], path: '/me', roles: ['user'] },
        { methods: ['GET'], path: '/slow', roles: ['user'] },
        { methods: ['DELETE'], path: '/admin/users/:id', roles: ['admin'] },
      ],
    }],
  }
}

export interface TestGatewayOptions {
  issuer: string
  /** Pre-chosen public port (see `freePort`); the IdP registers `${publicUrl}/bff/callback`. */
  port: number
  publicUrl?: string
  redisUrl?: string
  policy: RoutePolicyJson
  env?: Record<string, string>
  deps?: GatewayDeps
}

export interface TestGateway {
  url: string
  adminUrl: string
  config: GatewayConfig
  policy: RoutePolicy
  gateway: Gateway
  close (): Promise<void>
}

export async function startTestGateway (options: TestGatewayOptions): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-routes-'))
  const routesFile = join(dir, 'routes.json')
  await writeFile(routesFile, JSON.stringify(options.policy))
  const env: Record<string, string> = {
    PUBLIC_URL: options.publicUrl ?? `http://127.0.0.1:${options.port}`,
    HOST: '127.0.0.1',
    PORT: String(options.port),
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: String(await freePort()),
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SESSION_SECRET: TEST_SESSION_SECRET,
    OIDC_ISSUER: options.issuer,
    OIDC_CLIENT_ID: TEST_CLIENT_ID,
    OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
    ROUTES_FILE: routesFile,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Test files sign in far more often than a person could; the limit has its own tests.
    LOGIN_RATE_LIMIT: '100000',
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : { SESSION_STORE: 'memory' }),
    ...options.env,
  }
  const config = loadConfig(env)
  const policy = await loadRoutePolicy(config.routesFile)
  const gateway = await buildApp(config, policy, options.deps)
  const addresses = await gateway.listen()
  return {
    url: addresses.public,
    adminUrl: addresses.admin,
    config,
    policy,
    gateway,
    close: () => gateway.close(),
  }
}
