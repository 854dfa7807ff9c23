/**
 * Runs the mock IdP and API: `tsx upstream-mock/main.ts`, configured from the
 * environment. `startUpstreamMock` does the same in-process (scripts/demo.ts).
 * With BILLING_API_PORT set, a second API (billing, its own audience and
 * scopes) runs beside the first (orders).
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import type { JWK } from 'jose'
import { startUpstreamApi } from './api.js'
import type { UpstreamApi } from './api.js'
import { startIdentityProvider } from './idp.js'
import type { ApiResource, ClientAuthMethod, IdentityProvider } from './idp.js'
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
  /** Scopes of the (orders) API, space-separated; default `api`. */
  API_SCOPES?: string
  /** Set to run the billing API too, on this port (0: any free one, then BILLING_API_AUDIENCE is needed). */
  BILLING_API_PORT?: string
  /** Default API_HOST. */
  BILLING_API_HOST?: string
  /** Default http://127.0.0.1:<BILLING_API_PORT>. */
  BILLING_API_AUDIENCE?: string
  /** Default `billing:read billing:write`. */
  BILLING_API_SCOPES?: string
  /** `true`: the billing API accepts DPoP-bound tokens only. */
  BILLING_API_DPOP?: string
  /** `false` turns acr off: no `urn:mock:pwd` / `urn:mock:mfa` logins, no step-up. Default on. */
  IDP_ACR?: string
  /** The one-time code of the MFA login; default 123456. */
  IDP_MFA_CODE?: string
  ACCESS_TOKEN_TTL?: string
  REFRESH_TOKEN_TTL?: string
  GATEWAY_CLIENT_ID?: string
  GATEWAY_CLIENT_SECRET?: string
  /** client_secret_basic (default), client_secret_post or private_key_jwt (then GATEWAY_CLIENT_JWKS). */
  GATEWAY_CLIENT_AUTH?: string
  /** The gateway's public key(s) for private_key_jwt: a JWK or a JWK set, as JSON. */
  GATEWAY_CLIENT_JWKS?: string
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
  /** Running when BILLING_API_PORT is set. */
  billingApi?: UpstreamApi
  close (): Promise<void>
}

function integer (env: UpstreamMockEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`)
  return value
}

function scopes (env: UpstreamMockEnv, name: string, fallback: string[]): string[] {
  const raw = env[name]
  return raw === undefined || raw.trim() === '' ? fallback : raw.split(/[\s,]+/).filter(Boolean)
}

const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt']

function clientAuthentication (env: UpstreamMockEnv): { tokenEndpointAuthMethod: ClientAuthMethod, jwks?: { keys: JWK[] } } {
  const method = (env.GATEWAY_CLIENT_AUTH ?? 'client_secret_basic') as ClientAuthMethod
  if (!CLIENT_AUTH_METHODS.includes(method)) {
    throw new Error(`GATEWAY_CLIENT_AUTH must be one of ${CLIENT_AUTH_METHODS.join(', ')}, got "${method}"`)
  }
  if (method !== 'private_key_jwt') return { tokenEndpointAuthMethod: method }
  let parsed: { keys?: JWK[] } & JWK
  try {
    parsed = JSON.parse(env.GATEWAY_CLIENT_JWKS ?? '') as typeof parsed
  } catch {
    throw new Error('GATEWAY_CLIENT_JWKS must be the gateway\'s public JWK (or JWK set) as JSON when GATEWAY_CLIENT_AUTH is private_key_jwt')
  }
  return { tokenEndpointAuthMethod: method, jwks: { keys: Array.isArray(parsed.keys) ? parsed.keys : [parsed] } }
}

interface BillingSettings {
  port: number
  host: string
  resource: Required<Pick<ApiResource, 'audience' | 'scopes'>>
  dpop: boolean
}

function billingSettings (env: UpstreamMockEnv, apiHost: string): BillingSettings | undefined {
  if (env.BILLING_API_PORT === undefined || env.BILLING_API_PORT === '') return undefined
  const port = integer(env, 'BILLING_API_PORT', 0)
  const audience = env.BILLING_API_AUDIENCE ?? (port === 0 ? undefined : `http://127.0.0.1:${port}`)
  if (audience === undefined) throw new Error('BILLING_API_AUDIENCE is needed when BILLING_API_PORT is 0')
  return {
    port,
    host: env.BILLING_API_HOST ?? apiHost,
    resource: { audience, scopes: scopes(env, 'BILLING_API_SCOPES', ['billing:read', 'billing:write']) },
    dpop: env.BILLING_API_DPOP === 'true',
  }
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
  const apiHost = env.API_HOST ?? '127.0.0.1'
  const backchannelLogoutUri = env.GATEWAY_BACKCHANNEL_LOGOUT_URI ??
    (origins[0] ? `${origins[0]}/bff/backchannel-logout` : undefined)
  const billing = billingSettings(env, apiHost)
  const clientAuth = clientAuthentication(env)
  const secret = env.GATEWAY_CLIENT_SECRET ?? (clientAuth.jwks ? undefined : 'demo-gateway-secret-change-me-0123456789')

  const idp = await startIdentityProvider({
    host: idpHost,
    port: integer(env, 'IDP_PORT', 4000),
    ...(env.IDP_ISSUER ? { issuer: env.IDP_ISSUER.replace(/\/+$/, '') } : {}),
    apiAudience,
    accessTokenTtl,
    refreshTokenTtl,
    ...(env.API_SCOPES ? { apiScopes: scopes(env, 'API_SCOPES', []) } : {}),
    resourceServers: billing ? [billing.resource] : [],
    acr: env.IDP_ACR === 'false' ? false : { ...(env.IDP_MFA_CODE ? { mfaCode: env.IDP_MFA_CODE } : {}) },
    clients: [{
      clientId: env.GATEWAY_CLIENT_ID ?? 'bff-gateway',
      ...(secret !== undefined ? { clientSecret: secret } : {}),
      ...clientAuth,
      redirectUris: origins.map(origin => `${origin}/bff/callback`),
      postLogoutRedirectUris: origins.map(origin => `${origin}/`),
      // A client has one back-channel logout URI: by default the first gateway origin's.
      ...(backchannelLogoutUri ? { backchannelLogoutUri } : {}),
      clientCredentials: true,
      tokenExchange: true,
    }],
  })

  const apis: UpstreamApi[] = []
  try {
    // Same process: fetch keys from the bind address, whatever public name the issuer has.
    const jwksUri = `http://${urlHost(idpHost)}:${idp.port}/jwks`
    const api = await startUpstreamApi({
      issuer: idp.issuer,
      audience: apiAudience,
      name: 'orders',
      host: apiHost,
      port: integer(env, 'API_PORT', 4001),
      jwksUri,
    })
    apis.push(api)
    const billingApi = billing
      ? await startUpstreamApi({
        issuer: idp.issuer,
        audience: billing.resource.audience,
        name: 'billing',
        host: billing.host,
        port: billing.port,
        jwksUri,
        ...(billing.dpop ? { dpop: { required: true } } : {}),
      })
      : undefined
    if (billingApi) apis.push(billingApi)
    return {
      idp,
      api,
      ...(billingApi ? { billingApi } : {}),
      async close () {
        await Promise.allSettled([...apis.map(started => started.close()), idp.close()])
      },
    }
  } catch (error) {
    await Promise.allSettled([...apis.map(started => started.close()), idp.close()])
    throw error
  }
}

function describe (mock: UpstreamMock): string[] {
  return [
    `identity provider: ${mock.idp.issuer} (listening on port ${mock.idp.port})`,
    `upstream API:      ${mock.api.url} (audience ${mock.idp.apiAudience})`,
    ...(mock.billingApi ? [`billing API:       ${mock.billingApi.url} (audience ${mock.billingApi.audience})`] : []),
    `demo users:        ${DEFAULT_USERS.map(user => `${user.username} / ${user.password} [${user.roles.join(', ')}]`).join('; ')}`,
    ...(mock.idp.mfaCode ? [`one-time code:     ${mock.idp.mfaCode} (logins asking for acr urn:mock:mfa)`] : []),
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
