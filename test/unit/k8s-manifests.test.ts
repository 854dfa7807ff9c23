/**
 * deploy/k8s/, read the way the API server and the kubelet would read it: no
 * cluster is needed to catch a variable the gateway does not know, a probe on
 * the wrong port or path, an admin port in the Service, a pod that may run as
 * root or write its image, or a grace period shorter than the drain it must
 * cover.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1/Deployment'
import { PodDisruptionBudget as PodDisruptionBudgetModel } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap as ConfigMapModel, Secret as SecretModel, Service as ServiceModel } from 'kubernetes-models/v1'
import { CONFIG_VARIABLES, loadConfig } from '../../gateway/config.js'
import { loadRoutePolicy } from '../../gateway/proxy/route-policy.js'
import { createTlsFiles, type TlsFiles } from '../helpers/redis-tls.js'

const DIR = fileURLToPath(new URL('../../deploy/k8s/', import.meta.url))
/** The contract's defaults (CONTRACT.md, Operations), used unless the Deployment sets the variables. */
const DEFAULT_SHUTDOWN_DELAY = 5
const DEFAULT_SHUTDOWN_TIMEOUT = 25
/** Seconds between the end of the drain and the kubelet's SIGKILL, at least. */
const GRACE_MARGIN = 5

interface Manifest { file: string, apiVersion: string, kind: string, metadata?: { name?: string, labels?: Record<string, string> }, [field: string]: unknown }

interface EnvVar { name: string, value?: string, valueFrom?: { secretKeyRef?: { name: string, key: string } } }
interface Probe { httpGet?: { path: string, port: number | string } }
interface Container {
  name: string
  ports?: Array<{ name?: string, containerPort: number }>
  env?: EnvVar[]
  envFrom?: unknown[]
  readinessProbe?: Probe
  livenessProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] }, sleep?: { seconds: number } } }
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } }
  volumeMounts?: Array<{ name: string, mountPath: string, subPath?: string }>
}
interface Volume { name: string, configMap?: { name: string }, secret?: { secretName: string, items?: Array<{ key: string, path: string }> } }
interface PodSpec {
  containers: Container[]
  securityContext?: Record<string, unknown>
  terminationGracePeriodSeconds?: number
  volumes?: Volume[]
}
interface Deployment extends Manifest {
  spec: { replicas: number, selector: { matchLabels: Record<string, string> }, template: { metadata: { labels: Record<string, string> }, spec: PodSpec } }
}
interface Service extends Manifest { spec: { selector: Record<string, string>, ports: Array<{ port: number, targetPort: number | string }> } }
interface Budget extends Manifest { spec: { minAvailable?: number, selector: { matchLabels: Record<string, string> } } }
interface ConfigMap extends Manifest { data: Record<string, string> }
interface Secret extends Manifest { stringData?: Record<string, string>, data?: Record<string, string> }
interface Kustomization extends Manifest { resources: string[] }

async function manifests (): Promise<Manifest[]> {
  const files = (await readdir(DIR)).filter(name => /\.ya?ml$/.test(name)).sort()
  const all: Manifest[] = []
  for (const file of files) {
    for (const document of parseAllDocuments(await readFile(join(DIR, file), 'utf8'))) {
      expect(document.errors, file).toEqual([])
      all.push({ ...(document.toJS() as Omit<Manifest, 'file'>), file } as Manifest)
    }
  }
  return all
}

async function one<T extends Manifest> (kind: string): Promise<T> {
  const found = (await manifests()).filter(manifest => manifest.kind === kind)
  expect(found, kind).toHaveLength(1)
  return found[0] as T
}

const gatewayContainer = (deployment: Deployment) => {
  const [container] = deployment.spec.template.spec.containers
  if (!container) throw new Error('the Deployment has no container')
  return container
}
const envOf = (container: Container) => new Map((container.env ?? []).map(variable => [variable.name, variable]))
const valueOf = (container: Container, name: string) => envOf(container).get(name)?.value

/** A container port by name or number. */
function portNumber (container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port
  return container.ports?.find(candidate => candidate.name === port)?.containerPort
}

const isSubsetOf = (part: Record<string, string>, whole: Record<string, string>) =>
  Object.entries(part).every(([key, value]) => whole[key] === value)

describe('deploy/k8s manifests', () => {
  it('parse, each with the API version and kind the API server knows, all listed in the kustomization', async () => {
    const all = await manifests()
    const known: Record<string, string> = {
      Deployment: 'apps/v1',
      Service: 'v1',
      PodDisruptionBudget: 'policy/v1',
      ConfigMap: 'v1',
      Secret: 'v1',
      Kustomization: 'kustomize.config.k8s.io/v1beta1',
    }
    expect(new Set(all.map(manifest => manifest.kind))).toEqual(new Set(Object.keys(known)))
    for (const manifest of all) {
      expect(manifest.apiVersion, manifest.file).toBe(known[manifest.kind])
      if (manifest.kind !== 'Kustomization') expect(manifest.metadata?.name, manifest.file).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    }
    const kustomization = await one<Kustomization>('Kustomization')
    const files = new Set(all.filter(manifest => manifest.kind !== 'Kustomization').map(manifest => manifest.file))
    expect(new Set(kustomization.resources)).toEqual(files)
  })

  it('each validates against the Kubernetes API\'s own JSON schema for its kind (kubernetes-models)', async () => {
    const models: Record<string, new (data: never) => { validate (): void }> = {
      Deployment: DeploymentModel,
      Service: ServiceModel,
      PodDisruptionBudget: PodDisruptionBudgetModel,
      ConfigMap: ConfigMapModel,
      Secret: SecretModel,
    }
    for (const manifest of await manifests()) {
      if (manifest.kind === 'Kustomization') continue
      const { file, ...data } = manifest
      const Model = models[manifest.kind]
      expect(Model, file).toBeDefined()
      expect(() => new (Model as NonNullable<typeof Model>)(data as never).validate(), file).not.toThrow()
    }
  })

  it('and the schema check would catch a mistake (a port given as text)', () => {
    const broken = { metadata: { name: 'x' }, spec: { ports: [{ port: 'eighty' }] } }
    expect(() => new ServiceModel(broken as never).validate()).toThrow(/port/)
  })
})

describe('the Deployment', () => {
  let deployment: Deployment
  let container: Container
  beforeAll(async () => {
    deployment = await one<Deployment>('Deployment')
    container = gatewayContainer(deployment)
  })

  it('runs two replicas its selector picks', () => {
    expect(deployment.spec.replicas).toBe(2)
    expect(isSubsetOf(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true)
  })

  it('sets only variables the gateway reads, each once', () => {
    const names = (container.env ?? []).map(variable => variable.name)
    expect(new Set(names).size).toBe(names.length)
    for (const name of names) expect(CONFIG_VARIABLES, name).toContain(name)
    // envFrom would bring in names this test cannot see.
    expect(container.envFrom).toBeUndefined()
  })

  it('listens on the container ports it declares, the admin listener on every interface (probes come from the kubelet)', () => {
    expect(portNumber(container, 'http')).toBe(Number(valueOf(container, 'PORT')))
    expect(portNumber(container, 'admin')).toBe(Number(valueOf(container, 'ADMIN_PORT')))
    expect(portNumber(container, 'admin')).toBe(3001)
    expect(valueOf(container, 'HOST')).toBe('0.0.0.0')
    expect(valueOf(container, 'ADMIN_HOST')).toBe('0.0.0.0')
  })

  it('probes readiness on /readyz and liveness on /healthz, both on the admin listener', () => {
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz')
    expect(portNumber(container, container.readinessProbe?.httpGet?.port)).toBe(3001)
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz')
    expect(portNumber(container, container.livenessProbe?.httpGet?.port)).toBe(3001)
  })

  it('runs as the image\'s node user (1000), never root, on a read-only root filesystem, without privileges', () => {
    const pod = deployment.spec.template.spec.securityContext ?? {}
    expect(pod).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 })
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true })
    expect(container.securityContext?.capabilities?.drop).toContain('ALL')
    expect(container.securityContext?.privileged).not.toBe(true)
  })

  it('requests CPU and memory and caps memory', () => {
    expect(container.resources?.requests?.cpu).toBeDefined()
    expect(container.resources?.requests?.memory).toBeDefined()
    expect(container.resources?.limits?.memory).toBeDefined()
  })

  it('sleeps SHUTDOWN_DELAY before SIGTERM and gives the whole drain time before SIGKILL', () => {
    const delay = Number(valueOf(container, 'SHUTDOWN_DELAY') ?? DEFAULT_SHUTDOWN_DELAY)
    const timeout = Number(valueOf(container, 'SHUTDOWN_TIMEOUT') ?? DEFAULT_SHUTDOWN_TIMEOUT)
    const { preStop } = container.lifecycle ?? {}
    const command = preStop?.exec?.command ?? []
    const sleep = preStop?.sleep?.seconds ?? (command[0] === 'sleep' ? Number(command[1]) : NaN)
    expect(sleep).toBe(delay)
    // The grace period runs from the preStop hook: the sleep, then the gateway's own delay and drain.
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(sleep + delay + timeout + GRACE_MARGIN)
  })

  it('mounts the route policy ConfigMap as a directory (subPath mounts are never updated) at ROUTES_FILE', async () => {
    const routesFile = valueOf(container, 'ROUTES_FILE')!
    const mount = container.volumeMounts?.find(candidate => candidate.mountPath === dirname(routesFile))
    expect(mount, 'a mount at the directory of ROUTES_FILE').toBeDefined()
    expect(mount?.subPath).toBeUndefined()
    const volume = deployment.spec.template.spec.volumes?.find(candidate => candidate.name === mount?.name)
    const configMap = await one<ConfigMap>('ConfigMap')
    expect(volume?.configMap?.name).toBe(configMap.metadata?.name)
    expect(Object.keys(configMap.data)).toContain(routesFile.slice(dirname(routesFile).length + 1))
  })

  it('takes its secrets from the Secret, and the Redis CA file from it as REDIS_TLS_CA names it', async () => {
    const secret = await one<Secret>('Secret')
    const keys = Object.keys({ ...secret.stringData, ...secret.data })
    const fromSecret = (container.env ?? []).filter(variable => variable.valueFrom?.secretKeyRef)
    expect(fromSecret.map(variable => variable.name)).toEqual(expect.arrayContaining(['SESSION_SECRET', 'ADMIN_TOKEN', 'OIDC_CLIENT_SECRET']))
    for (const variable of fromSecret) {
      expect(variable.valueFrom?.secretKeyRef?.name).toBe(secret.metadata?.name)
      expect(keys).toContain(variable.valueFrom?.secretKeyRef?.key)
    }
    const caFile = valueOf(container, 'REDIS_TLS_CA')!
    const mount = container.volumeMounts?.find(candidate => caFile.startsWith(`${candidate.mountPath}/`))
    const volume = deployment.spec.template.spec.volumes?.find(candidate => candidate.name === mount?.name)
    expect(volume?.secret?.secretName).toBe(secret.metadata?.name)
    const item = volume?.secret?.items?.find(candidate => `${mount?.mountPath}/${candidate.path}` === caFile)
    expect(keys).toContain(item?.key)
  })
})

describe('the Deployment\'s environment, with the Secret filled in', () => {
  let tls: TlsFiles
  let dir: string
  beforeAll(async () => {
    tls = await createTlsFiles()
    dir = await mkdtemp(join(tmpdir(), 'bff-k8s-'))
  })
  afterAll(async () => {
    await tls?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('is a configuration the gateway starts with, and the ConfigMap a policy it loads', async () => {
    const container = gatewayContainer(await one<Deployment>('Deployment'))
    const configMap = await one<ConfigMap>('ConfigMap')
    const routesFile = join(dir, 'routes.json')
    await writeFile(routesFile, Object.values(configMap.data)[0]!)
    const filledSecret: Record<string, string> = {
      SESSION_SECRET: 's'.repeat(48),
      ADMIN_TOKEN: 'a'.repeat(40),
      OIDC_CLIENT_SECRET: 'client-secret',
      REDIS_URL: 'rediss://bff:password@redis.example.com:6380',
    }
    const env: Record<string, string> = {}
    for (const variable of container.env ?? []) {
      env[variable.name] = variable.valueFrom?.secretKeyRef ? filledSecret[variable.name]! : variable.value!
    }
    // Files the pod would find where the mounts put them.
    const config = loadConfig({ ...env, ROUTES_FILE: routesFile, REDIS_TLS_CA: tls.ca })
    expect(config).toMatchObject({ host: '0.0.0.0', port: 3000, adminHost: '0.0.0.0', adminPort: 3001, sessionStore: 'redis' })
    expect(config.redis).toMatchObject({ mode: 'standalone' })
    await expect(loadRoutePolicy(routesFile)).resolves.toBeDefined()
  })
})

describe('the Secret template', () => {
  it('holds no values', async () => {
    const secret = await one<Secret>('Secret')
    expect(secret.data).toBeUndefined()
    expect(Object.keys(secret.stringData ?? {}).length).toBeGreaterThan(0)
    for (const [key, value] of Object.entries(secret.stringData ?? {})) expect(value, key).toBe('')
  })
})

describe('the Service', () => {
  it('selects the pods and exposes the public port only, never the admin listener', async () => {
    const service = await one<Service>('Service')
    const deployment = await one<Deployment>('Deployment')
    const container = gatewayContainer(deployment)
    expect(isSubsetOf(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true)
    expect(service.spec.ports).toHaveLength(1)
    expect(portNumber(container, service.spec.ports[0]!.targetPort)).toBe(Number(valueOf(container, 'PORT')))
    for (const port of service.spec.ports) expect(portNumber(container, port.targetPort)).not.toBe(Number(valueOf(container, 'ADMIN_PORT')))
  })
})

describe('the PodDisruptionBudget', () => {
  it('keeps at least one replica of the Deployment through voluntary disruptions', async () => {
    const budget = await one<Budget>('PodDisruptionBudget')
    const deployment = await one<Deployment>('Deployment')
    expect(budget.spec.minAvailable).toBe(1)
    expect(isSubsetOf(budget.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true)
  })
})
