/**
 * The whole product on loopback, from real parts: a private redis-server, the
 * oidc-provider identity provider, the token-only API, and one or more gateway
 * instances sharing Redis. Every test file builds its own stack.
 */
import { startIdentityProvider, type IdentityProvider, type IdentityProviderOptions, type IdpClient } from '../../upstream-mock/idp.js'
import { startUpstreamApi, type UpstreamApi, type UpstreamApiOptions } from '../../upstream-mock/api.js'
import { startRedisServer, type RedisServer } from './redis-server.js'
import { freePort } from './free-port.js'
import type { GatewayDeps } from '../../gateway/app.js'
import { examplePolicy, gatewayClient, startTestGateway, type RoutePolicyJson, type TestGateway } from './gateway.js'

export interface StackOptions {
  instances?: number
  store?: 'redis' | 'memory'
  idp?: Omit<IdentityProviderOptions, 'clients' | 'apiAudience'>
  /** More of every gateway's environment; a function of PUBLIC_URL for settings that name it (e.g. NATIVE_REDIRECT_URIS). */
  gatewayEnv?: Record<string, string> | ((publicUrl: string) => Record<string, string>)
  /** The policy, given the default API's URL and (by name) those of `apis`. */
  policy?: (upstream: string, apis: Record<string, UpstreamApi>) => RoutePolicyJson
  redisPersistence?: boolean
  /**
   * Redis settings for every gateway (e.g. REDIS_CLUSTER_NODES, or REDIS_SENTINELS and
   * REDIS_SENTINEL_NAME) instead of a private standalone redis-server; `stack.redis` stays unset.
   */
  redisEnv?: Record<string, string>
  deps?: GatewayDeps
  /** Leeway of the API's exp/nbf checks (default 5 s), for tests of an IdP whose clock is off. */
  apiClockToleranceSeconds?: number
  /** More of the gateway's registration at the IdP, e.g. `{ clientCredentials: true, tokenExchange: true }`. */
  idpClient?: Partial<Omit<IdpClient, 'clientId' | 'redirectUris'>>
  /** More settings of the API, e.g. `{ dpop: { required: true } }`. */
  api?: Pick<UpstreamApiOptions, 'dpop' | 'name'>
  /**
   * More APIs, by name, each with its own audience (an IdP resource server with `scopes`), started
   * after the IdP; the policy gets their URLs. E.g. `{ orders: { audience: 'https://orders.test', scopes: ['orders:read'] } }`.
   */
  apis?: Record<string, Pick<UpstreamApiOptions, 'dpop'> & { audience: string, scopes?: string[], accessTokenTtl?: number }>
}

export interface Stack {
  redis?: RedisServer
  idp: IdentityProvider
  api: UpstreamApi
  /** The APIs of `options.apis`, by name. */
  apis: Record<string, UpstreamApi>
  gateways: TestGateway[]
  /** The first gateway: PUBLIC_URL of every instance (as if behind one load balancer). */
  gateway: TestGateway
  publicUrl: string
  /** Starts another gateway instance on the same port as instance `index` was (after it closed). */
  /** `env` overrides this instance's environment from now on (e.g. a rotated SESSION_SECRET). */
  restartGateway (index: number, env?: Record<string, string>): Promise<TestGateway>
  close (): Promise<void>
}

export async function startStack (options: StackOptions = {}): Promise<Stack> {
  const instances = options.instances ?? 1
  const ports = await Promise.all(Array.from({ length: instances }, () => freePort()))
  const publicUrl = `http://127.0.0.1:${ports[0]}`
  const apiPort = await freePort()
  const apiAudience = `http://127.0.0.1:${apiPort}`
  const redis = (options.store ?? 'redis') === 'redis' && options.redisEnv === undefined
    ? await startRedisServer({ persistence: options.redisPersistence ?? false })
    : undefined
  const extraApis = Object.entries(options.apis ?? {})
  const idp = await startIdentityProvider({
    ...options.idp,
    ...(extraApis.length > 0
      ? {
          resourceServers: [
            ...options.idp?.resourceServers ?? [],
            ...extraApis.map(([, api]) => ({
              audience: api.audience,
              ...(api.scopes ? { scopes: api.scopes } : {}),
              ...(api.accessTokenTtl !== undefined ? { accessTokenTtl: api.accessTokenTtl } : {}),
            })),
          ],
        }
      : {}),
    apiAudience,
    clients: [{ ...gatewayClient(publicUrl), ...options.idpClient }],
  })
  const api = await startUpstreamApi({
    ...options.api,
    issuer: idp.issuer,
    audience: apiAudience,
    port: apiPort,
    ...(options.apiClockToleranceSeconds !== undefined ? { clockToleranceSeconds: options.apiClockToleranceSeconds } : {}),
  })
  const apis: Record<string, UpstreamApi> = {}
  for (const [name, settings] of extraApis) {
    apis[name] = await startUpstreamApi({
      issuer: idp.issuer,
      name,
      audience: settings.audience,
      ...(settings.dpop ? { dpop: settings.dpop } : {}),
      ...(options.apiClockToleranceSeconds !== undefined ? { clockToleranceSeconds: options.apiClockToleranceSeconds } : {}),
    })
  }
  const policy = (options.policy ?? examplePolicy)(api.url, apis)
  const start = (port: number, extraEnv: Record<string, string> = {}) => startTestGateway({
    issuer: idp.issuer,
    port,
    publicUrl,
    policy,
    ...(redis ? { redisUrl: redis.url } : {}),
    env: {
      OIDC_AUTH_PARAMS: JSON.stringify({ resource: apiAudience }),
      ...(options.redisEnv ? { SESSION_STORE: 'redis', ...options.redisEnv } : {}),
      ...(typeof options.gatewayEnv === 'function' ? options.gatewayEnv(publicUrl) : options.gatewayEnv),
      ...extraEnv,
    },
    ...(options.deps ? { deps: options.deps } : {}),
  })
  const gateways: TestGateway[] = []
  for (const port of ports) gateways.push(await start(port))

  return {
    ...(redis ? { redis } : {}),
    idp,
    api,
    apis,
    gateways,
    gateway: gateways[0]!,
    publicUrl,
    async restartGateway (index, env) {
      const port = ports[index]!
      const next = await start(port, env)
      gateways[index] = next
      return next
    },
    async close () {
      await Promise.allSettled(gateways.map(g => g.close()))
      await Promise.allSettled(Object.values(apis).map(extra => extra.close()))
      await api.close()
      await idp.close()
      await redis?.close()
    },
  }
}
