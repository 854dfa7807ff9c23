/**
 * Runs the mock IdP and API: `tsx upstream-mock/main.ts`, configured from the
 * environment. `startUpstreamMock` does the same in-process (scripts/demo.ts).
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { startUpstreamApi } from './api.js'
import type { UpstreamApi } from './api.js'
import { startIdentityProvider } from './idp.js'
import type { IdentityProvider } from './idp.js'
import { urlHost } from './url-host.js'
import { DEFAULT_USERS } from './users.js'

/** The variables main.ts reads; any subset of process.env will do. */
export interface UpstreamMockEnv {
  IDP_HOST?: string
  IDP_PORT?: string
  /** Public issuer URL when it differs from the bind address, e.g. http://idp:4000 in Docker. */
  IDP_ISSUER?: string
  API_HOST?: string
  API_PORT?: string
  API_AUDIENCE?: string
  ACCESS_TOKEN_TTL?: string
  REFRESH_TOKEN_TTL?: string
  GATEWAY_CLIENT_ID?: string
  GATEWAY_CLIENT_SECRET?: string
  /** Comma-separated origins of the gateway(s); each gets its callback and post-logout URIs. */
  GATEWAY_PUBLIC_URL?: string
  /**
   * Where the IdP itself posts back-channel logout tokens; default the first
   * GATEWAY_PUBLIC_URL + /bff/backchannel-logout. Differs in Docker, where the
   * IdP reaches the gateway by its service name, not by the browser's URL.
   */
  GATEWAY_BACKCHANNEL_LOGOUT_URI?: string
  [name: string]: string | undefined
}

export interface UpstreamMock {
  idp: IdentityProvider
  api: UpstreamApi
  close (): Promise<void>
}

function integer (env: UpstreamMockEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`)
  return value
}

function gatewayOrigins (env: UpstreamMockEnv): string[] {
  return (env.GATEWAY_PUBLIC_URL ?? 'http://localhost:3000')
    .split(',')
    .map(value => value.trim().replace(/\/+$/, ''))
    .filter(Boolean)
}

export async function startUpstreamMock (env: UpstreamMockEnv = process.env): Promise<UpstreamMock> {
  const origins = gatewayOrigins(env)
  const apiAudience = env.API_AUDIENCE ?? 'http://127.0.0.1:4001'
  const accessTokenTtl = integer(env, 'ACCESS_TOKEN_TTL', 300)
  const refreshTokenTtl = integer(env, 'REFRESH_TOKEN_TTL', 86_400)
  const idpHost = env.IDP_HOST ?? '127.0.0.1'
  const backchannelLogoutUri = env.GATEWAY_BACKCHANNEL_LOGOUT_URI ??
    (origins[0] ? `${origins[0]}/bff/backchannel-logout` : undefined)

  const idp = await startIdentityProvider({
    host: idpHost,
    port: integer(env, 'IDP_PORT', 4000),
    ...(env.IDP_ISSUER ? { issuer: env.IDP_ISSUER.replace(/\/+$/, '') } : {}),
    apiAudience,
    accessTokenTtl,
    refreshTokenTtl,
    clients: [{
      clientId: env.GATEWAY_CLIENT_ID ?? 'bff-gateway',
      clientSecret: env.GATEWAY_CLIENT_SECRET ?? 'demo-gateway-secret-change-me-0123456789',
      redirectUris: origins.map(origin => `${origin}/bff/callback`),
      postLogoutRedirectUris: origins.map(origin => `${origin}/`),
      // A client has one back-channel logout URI: by default the first gateway origin's.
      ...(backchannelLogoutUri ? { backchannelLogoutUri } : {}),
    }],
  })

  let api: UpstreamApi
  try {
    api = await startUpstreamApi({
      issuer: idp.issuer,
      audience: apiAudience,
      host: env.API_HOST ?? '127.0.0.1',
      port: integer(env, 'API_PORT', 4001),
      // Same process: fetch keys from the bind address, whatever public name the issuer has.
      jwksUri: `http://${urlHost(idpHost)}:${idp.port}/jwks`,
    })
  } catch (error) {
    await idp.close()
    throw error
  }

  return {
    idp,
    api,
    async close () {
      await Promise.allSettled([api.close(), idp.close()])
    },
  }
}

function describe (mock: UpstreamMock): string[] {
  return [
    `identity provider: ${mock.idp.issuer} (listening on port ${mock.idp.port})`,
    `upstream API:      ${mock.api.url} (audience ${mock.idp.apiAudience})`,
    `demo users:        ${DEFAULT_USERS.map(user => `${user.username} / ${user.password} [${user.roles.join(', ')}]`).join('; ')}`,
  ]
}

async function main (): Promise<void> {
  const mock = await startUpstreamMock(process.env)
  for (const line of describe(mock)) console.log(line)
  const shutdown = (): void => {
    mock.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main().catch(error => {
    console.error(`upstream-mock: ${(error as Error).message}`)
    process.exit(1)
  })
}
