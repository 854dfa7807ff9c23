/**
 * A gateway process for the login and refresh contenders: the same
 * contender-gateway.ts as (d), the contract's example policy pointed at the
 * stub, its own IdP (a child process) and Redis. (d) keeps its own set-up in
 * contenders.ts, with its narrowed route.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../test/helpers/free-port.js'
import { examplePolicy, gatewayProcessEnv, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../test/helpers/gateway.js'
import type { IdpClient } from '../upstream-mock/idp.js'
import { startChild } from './processes.js'

/**
 * `LOGIN_RATE_LIMIT` counts per client address, and every sign-in of the bench comes from
 * 127.0.0.1. Set out of reach: the limiter still counts each /bff/login and /bff/callback in
 * Redis, as it does in production, but never refuses one.
 */
export const UNREACHABLE_LOGIN_RATE_LIMIT = '1000000000'

/** Where the gateway will listen, known before its IdP starts (the IdP must know the redirect URI). */
export interface GatewayAddress {
  port: number
  publicUrl: string
}

export async function reserveGatewayAddress (): Promise<GatewayAddress> {
  const port = await freePort()
  return { port, publicUrl: `http://127.0.0.1:${port}` }
}

/** The gateway's registration at its IdP. */
export function benchGatewayClient ({ publicUrl }: GatewayAddress): IdpClient {
  return {
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    redirectUris: [`${publicUrl}/bff/callback`],
    postLogoutRedirectUris: [`${publicUrl}/`],
  }
}

export interface BenchGatewayOptions {
  address: GatewayAddress
  issuer: string
  redisUrl: string
  stubUrl: string
  logLevel: string
  /** More of the gateway's environment, e.g. TOKEN_REFRESH_SKEW. */
  env?: Record<string, string>
}

export interface BenchGateway {
  url: string
  pid: number | undefined
  /** The admin listener's `/metrics` (read with the test admin token). */
  metricsUrl: string
  stop (): Promise<void>
}

export async function startBenchGateway (options: BenchGatewayOptions): Promise<BenchGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-bench-'))
  try {
    const routesFile = join(dir, 'routes.json')
    await writeFile(routesFile, JSON.stringify(examplePolicy(options.stubUrl)))
    const adminPort = await freePort()
    const child = await startChild('contender-gateway', {
      env: {
        ...gatewayProcessEnv({
          publicUrl: options.address.publicUrl,
          port: options.address.port,
          adminPort,
          redisUrl: options.redisUrl,
          issuer: options.issuer,
          routesFile,
          logLevel: options.logLevel,
        }),
        // As (d): the stub's URL as the API's resource, so the IdP issues JWT access tokens, as in production.
        OIDC_AUTH_PARAMS: JSON.stringify({ resource: options.stubUrl }),
        LOGIN_RATE_LIMIT: UNREACHABLE_LOGIN_RATE_LIMIT,
        ...options.env,
      },
    })
    return {
      url: options.address.publicUrl,
      pid: child.process.pid,
      metricsUrl: `http://127.0.0.1:${adminPort}/metrics`,
      async stop () {
        await child.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}
