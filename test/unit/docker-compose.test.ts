/**
 * docker-compose.yml and the load balancer's config, read the way Docker
 * Compose and HAProxy read them: no Docker engine is needed to catch a gateway
 * that would not start, an instance the load balancer does not know, or an
 * issuer the browser and the gateways would see differently.
 */
import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { CONFIG_VARIABLES, loadConfig } from '../../gateway/config.js'
import { loadRoutePolicy } from '../../gateway/proxy/route-policy.js'

const ROOT = new URL('../../', import.meta.url)

interface ComposeService {
  build?: { context?: string, target?: string }
  image?: string
  environment?: Record<string, string>
  network_mode?: string
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test?: string[] | string }
  stop_grace_period?: string
}

interface Compose { services: Record<string, ComposeService> }

async function compose (): Promise<Compose> {
  // Compose honours YAML merge keys (`<<: *gateway`); so must we.
  return parse(await readFile(new URL('docker-compose.yml', ROOT), 'utf8'), { merge: true }) as Compose
}

async function gatewayServices (): Promise<Array<[string, ComposeService]>> {
  return Object.entries((await compose()).services).filter(([, service]) => service.build?.target === 'gateway')
}

const envOf = (service: ComposeService) => service.environment ?? {}

/** The load balancer: the service whose config file lives in deploy/ and which depends on every gateway. */
async function loadBalancer (): Promise<{ name: string, service: ComposeService, configPath: string, config: string }> {
  const { services } = await compose()
  const gateways = (await gatewayServices()).map(([name]) => name)
  const found = Object.entries(services).find(([, service]) =>
    gateways.length > 0 && gateways.every(name => service.depends_on?.[name] !== undefined))
  if (!found) throw new Error('no service depends on every gateway')
  const [name, service] = found
  const mount = (service.volumes ?? []).find(volume => volume.startsWith('./deploy/'))
  if (!mount) throw new Error(`service ${name} mounts no config file from deploy/`)
  const configPath = mount.split(':')[0]!
  return { name, service, configPath, config: await readFile(new URL(configPath, ROOT), 'utf8') }
}

/** `host:port` of every backend server in an HAProxy config (or nginx `server` line of an upstream). */
function backendAddresses (config: string): string[] {
  return [...config.matchAll(/^\s*server\s+(?:\S+\s+)?(\d+\.\d+\.\d+\.\d+:\d+|[\w.-]+:\d+)/gm)].map(match => match[1]!)
}

describe('docker-compose.yml', () => {
  it('parses and runs two gateway instances built from the Dockerfile', async () => {
    expect((await gatewayServices()).length).toBe(2)
  })

  it('sets only variables the config schema knows, and a configuration that loads, on every instance', async () => {
    for (const [name, service] of await gatewayServices()) {
      const env = envOf(service)
      const unknown = Object.keys(env).filter(key => !CONFIG_VARIABLES.includes(key))
      expect(unknown, `service ${name}`).toEqual([])
      // The image's /app/deploy/routes.json and /app/demo are this repository's deploy/routes.json and demo/.
      const local = (path: string) => fileURLToPath(new URL(path.replace(/^\/app\//, ''), ROOT))
      const config = loadConfig({ ...env, ROUTES_FILE: local(env.ROUTES_FILE!), ...(env.STATIC_DIR ? { STATIC_DIR: local(env.STATIC_DIR) } : {}) })
      expect(config.sessionStore, `service ${name}`).toBe('redis')
      await expect(loadRoutePolicy(config.routesFile), `service ${name}`).resolves.toBeDefined()
    }
  })

  it('gives every instance the same Redis, secrets, public URL and identity provider client', async () => {
    const gateways = await gatewayServices()
    const shared = ['REDIS_URL', 'SESSION_SECRET', 'PUBLIC_URL', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'ADMIN_TOKEN', 'ROUTES_FILE']
    for (const variable of shared) {
      const values = new Set(gateways.map(([, service]) => envOf(service)[variable]))
      expect([...values], variable).toHaveLength(1)
      expect([...values][0], variable).toBeTruthy()
    }
  })

  it('gives instances that share a network namespace their own ports', async () => {
    const gateways = await gatewayServices()
    const byNamespace = new Map<string, string[]>()
    for (const [name, service] of gateways) {
      const env = envOf(service)
      const key = service.network_mode ?? name
      byNamespace.set(key, [...(byNamespace.get(key) ?? []), env.PORT ?? '3000', env.ADMIN_PORT ?? '3001'])
    }
    for (const ports of byNamespace.values()) expect(new Set(ports).size).toBe(ports.length)
  })

  it('puts every gateway behind the load balancer, whose config names each instance', async () => {
    const lb = await loadBalancer()
    const addresses = backendAddresses(lb.config)
    for (const [name, service] of await gatewayServices()) {
      const env = envOf(service)
      // In one namespace with the load balancer, an instance is its HOST:PORT; otherwise its service name.
      const address = service.network_mode === lb.service.network_mode
        ? `${env.HOST ?? '127.0.0.1'}:${env.PORT ?? '3000'}`
        : `${name}:${env.PORT ?? '3000'}`
      expect(addresses, `${name} in ${lb.configPath}`).toContain(address)
      expect(lb.service.depends_on?.[name]?.condition, name).toBe('service_healthy')
    }
    expect(addresses).toHaveLength((await gatewayServices()).length)
  })

  it('publishes the load balancer on PUBLIC_URL\'s port, and neither the gateways nor their admin listeners', async () => {
    const { services } = await compose()
    const lb = await loadBalancer()
    const publicUrl = new URL(envOf((await gatewayServices())[0]![1]).PUBLIC_URL!)
    const bind = /^\s*bind\s+\S*:(\d+)/m.exec(lb.config)?.[1] ?? /^\s*listen\s+(\d+)/m.exec(lb.config)?.[1]
    expect(bind).toBe(publicUrl.port)
    // Ports of a shared namespace are published by the service that owns it.
    const owner = lb.service.network_mode?.replace(/^service:/, '') ?? lb.name
    expect(services[owner]?.ports ?? []).toContain(`${publicUrl.port}:${bind}`)
    const published = Object.values(services).flatMap(service => service.ports ?? []).map(port => port.split(':').at(-1))
    for (const [, service] of await gatewayServices()) {
      expect(published).not.toContain(envOf(service).ADMIN_PORT ?? '3001')
      expect(published).not.toContain(envOf(service).PORT)
    }
  })

  it('uses one issuer URL for the browser and the gateways, and sends back-channel logout to the load balancer', async () => {
    const { services } = await compose()
    const gateways = await gatewayServices()
    const [idpName, idp] = Object.entries(services).find(([, service]) => envOf(service).IDP_ISSUER !== undefined)!
    const idpEnv = envOf(idp)
    const issuer = new URL(idpEnv.IDP_ISSUER!)
    // The browser reaches the IdP at the issuer's published port...
    expect(idp.ports ?? []).toContain(`${issuer.port}:${idpEnv.IDP_PORT}`)
    for (const [name, service] of gateways) {
      const env = envOf(service)
      expect(env.OIDC_ISSUER, name).toBe(idpEnv.IDP_ISSUER)
      // ...and a localhost issuer is the IdP only inside the IdP's own network namespace.
      if (issuer.hostname === 'localhost' || issuer.hostname === '127.0.0.1') {
        expect(service.network_mode, name).toBe(`service:${idpName}`)
      }
      expect(env.OIDC_CLIENT_ID).toBe(idpEnv.GATEWAY_CLIENT_ID)
      expect(env.OIDC_CLIENT_SECRET).toBe(idpEnv.GATEWAY_CLIENT_SECRET)
      expect(env.PUBLIC_URL).toBe(idpEnv.GATEWAY_PUBLIC_URL)
    }
    expect(idpEnv.GATEWAY_BACKCHANNEL_LOGOUT_URI).toBe(`${idpEnv.GATEWAY_PUBLIC_URL}/bff/backchannel-logout`)
  })

  it('has a healthcheck on every service', async () => {
    for (const [name, service] of Object.entries((await compose()).services)) {
      const test = service.healthcheck?.test
      expect(Array.isArray(test) ? test.length : test?.length ?? 0, name).toBeGreaterThan(0)
    }
  })

  it('checks each gateway\'s readiness on its own admin port', async () => {
    for (const [name, service] of await gatewayServices()) {
      const test = [service.healthcheck?.test ?? []].flat().join(' ')
      expect(test, name).toContain('/readyz')
      expect(test, name).toContain('ADMIN_PORT')
    }
  })

  it('lets a stopping gateway drain: the balancer watches each one\'s admin /readyz, and compose waits out the whole shutdown', async () => {
    const lb = await loadBalancer()
    expect(lb.config).toMatch(/^\s*http-check send meth GET uri \/readyz$/m)
    expect(lb.config).toMatch(/^\s*http-check expect ! string draining$/m)
    for (const [name, service] of await gatewayServices()) {
      const env = envOf(service)
      const server = new RegExp(`^\\s*server\\s+\\S+\\s+\\S+:${env.PORT}\\s+check port ${env.ADMIN_PORT}$`, 'm')
      expect(lb.config, name).toMatch(server)
      const { shutdown } = loadConfig({ ...env })
      const grace = /^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1]
      expect(Number(grace), name).toBeGreaterThan(shutdown.delaySeconds + shutdown.timeoutSeconds)
    }
  })
})

describe('Dockerfile', () => {
  it('runs the gateway as a non-root user with production dependencies only', async () => {
    const dockerfile = await readFile(new URL('Dockerfile', ROOT), 'utf8')
    const stages = dockerfile.split(/^FROM /m).slice(1)
    const gateway = stages.find(stage => /^\S+ AS gateway\b/i.test(stage))
    expect(gateway).toBeDefined()
    expect(gateway).toMatch(/npm ci --omit=dev/)
    expect(gateway).toMatch(/^USER node$/m)
    expect(gateway).toMatch(/^HEALTHCHECK /m)
    // The files the compose file points the gateways at inside the image.
    expect(gateway).toMatch(/^COPY deploy\/routes\.json /m)
    // The demo pages come from the build stage, which bundles the client library into them (demo/vendor/).
    expect(gateway).toMatch(/^COPY --from=build \/app\/demo /m)
    const build = stages.find(stage => /^\S+ AS build\b/i.test(stage))
    expect(build).toMatch(/^RUN npm run build:demo$/m)
  })
})
