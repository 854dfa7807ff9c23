/**
 * Like test/helpers/stack.ts, but every gateway instance is its own process:
 * a private redis-server, the oidc-provider IdP and the API in this process,
 * and `instances` gateway processes sharing Redis behind one PUBLIC_URL.
 */
import { startIdentityProvider, type IdentityProvider, type IdentityProviderOptions } from '../../upstream-mock/idp.js'
import { startUpstreamApi, type UpstreamApi } from '../../upstream-mock/api.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { examplePolicy, gatewayClient } from '../helpers/gateway.js'
import { startGatewayProcess, type GatewayProcess, type GatewayProcessOptions } from './gateway-process.js'

export interface ProcessStackOptions {
  instances?: number
  idp?: Omit<IdentityProviderOptions, 'clients' | 'apiAudience'>
  gatewayEnv?: Record<string, string>
  /** Every gateway process runs this far off the real clock. */
  clockOffsetMs?: number
  /** PUBLIC_URL of every instance (e.g. a load balancer's), instead of the first instance's own URL. */
  publicUrl?: string
}

export interface ProcessStack {
  redis: RedisServer
  idp: IdentityProvider
  api: UpstreamApi
  gateways: GatewayProcess[]
  publicUrl: string
  /** Each instance's admin port, the same across restarts (a load balancer checks readiness there). */
  adminPorts: number[]
  /** Starts instance `index` again, on its ports, once it has exited; `env` is added to its environment. */
  startGateway (index: number, options?: Pick<GatewayProcessOptions, 'env' | 'imports'>): Promise<GatewayProcess>
  close (): Promise<void>
}

export async function startProcessStack (options: ProcessStackOptions = {}): Promise<ProcessStack> {
  const ports = await Promise.all(Array.from({ length: options.instances ?? 1 }, () => freePort()))
  const adminPorts = await Promise.all(ports.map(() => freePort()))
  const publicUrl = options.publicUrl ?? `http://127.0.0.1:${ports[0]}`
  const apiPort = await freePort()
  const apiAudience = `http://127.0.0.1:${apiPort}`
  const redis = await startRedisServer()
  const idp = await startIdentityProvider({
    ...options.idp,
    apiAudience,
    clients: [gatewayClient(publicUrl)],
  })
  const api = await startUpstreamApi({ issuer: idp.issuer, audience: apiAudience, port: apiPort })
  const gateways: GatewayProcess[] = []
  const close = async () => {
    await Promise.allSettled(gateways.map(g => g.stop()))
    await api.close()
    await idp.close()
    await redis.close()
  }
  const start = (index: number, { env = {}, imports }: Pick<GatewayProcessOptions, 'env' | 'imports'> = {}) => startGatewayProcess({
    port: ports[index]!,
    adminPort: adminPorts[index]!,
    publicUrl,
    issuer: idp.issuer,
    redisUrl: redis.url,
    policy: examplePolicy(api.url),
    env: { OIDC_AUTH_PARAMS: JSON.stringify({ resource: apiAudience }), ...options.gatewayEnv, ...env },
    ...(options.clockOffsetMs ? { clockOffsetMs: options.clockOffsetMs } : {}),
    ...(imports ? { imports } : {}),
  })
  const started = await Promise.allSettled(ports.map((_port, index) => start(index)))
  for (const result of started) if (result.status === 'fulfilled') gateways.push(result.value)
  const failure = started.find(result => result.status === 'rejected')
  if (failure) {
    await close()
    throw failure.reason
  }
  return {
    redis,
    idp,
    api,
    gateways,
    publicUrl,
    adminPorts,
    async startGateway (index, startOptions) {
      const next = await start(index, startOptions)
      gateways[index] = next
      return next
    },
    close,
  }
}
