/**
 * The gateway's configuration: one schema over the environment, validated once
 * at start-up, whose output is the typed configuration (`GatewayConfig` is
 * inferred from it, never written out by hand). Only `server.ts` passes
 * `process.env` in; everything else gets the typed result. The route policy
 * file is read by `proxy/route-policy.ts`, not here: it is reloaded on its own.
 */
import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { z } from 'zod'
import { readClientPrivateKey } from './auth/client-key.js'
import { parseByteSize } from './byte-size.js'

export type TrustProxy = boolean | number | string[]

export interface HostPort { host: string, port: number }

/** Raised when the environment does not describe a runnable gateway; one line per problem. */
export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[], options?: ErrorOptions) {
    super(`invalid configuration:\n${problems.join('\n')}`, options)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

const port = z.coerce.number().int().min(0).max(65535)
const seconds = z.coerce.number().int().positive()
const optionalText = z.string().trim().min(1).optional()

const hostPortList = z.string().transform((value, ctx) => {
  const nodes: HostPort[] = []
  for (const item of value.split(',').map(s => s.trim()).filter(Boolean)) {
    const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(item)
    const portNumber = Number(match?.[2])
    if (!match?.[1] || !Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port` })
      return z.NEVER
    }
    nodes.push({ host: match[1].replace(/^\[|\]$/g, ''), port: portNumber })
  }
  if (nodes.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'needs at least one host:port' })
    return z.NEVER
  }
  return nodes
})

// Schemes a native redirect may never use: they run code, read files or are interceptable in transit
// (plain http only on loopback, as RFC 8252 §7.3 allows for apps listening on the device itself).
const UNSAFE_REDIRECT_SCHEMES = new Set(['http:', 'javascript:', 'data:', 'file:', 'blob:', 'about:', 'vbscript:', 'ws:', 'wss:'])

/** RFC 8252: a private-use scheme (`com.example.app:/oauth2redirect`), a claimed https URL or a loopback http one; never with a fragment. */
const nativeRedirectUris = z.string().optional().transform((value, ctx) => {
  const uris: string[] = []
  for (const item of (value ?? '').split(',').map(s => s.trim()).filter(Boolean)) {
    let url: URL | undefined
    try {
      url = new URL(item)
    } catch {
      url = undefined
    }
    if (!url || (UNSAFE_REDIRECT_SCHEMES.has(url.protocol) && !isLoopbackHttp(url)) || item.includes('#') || url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not a custom-scheme URI or https URL without a fragment` })
      continue
    }
    // Kept as written: a redirect_uri must match one of these exactly.
    uris.push(item)
  }
  return uris
})

/** The session cache's budget (estimated heap bytes); a budget smaller than a few hundred sessions is a mistyped unit. */
const MIN_SESSION_CACHE_MEMORY = 1024 * 1024
const sessionCacheMemory = z.string().transform((value, ctx) => {
  const bytes = parseByteSize(value)
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size: a number with an optional unit b, kb, mb or gb (powers of 1024), e.g. 64mb` })
    return z.NEVER
  }
  if (bytes !== 0 && bytes < MIN_SESSION_CACHE_MEMORY) {
    ctx.addIssue({ code: 'custom', message: `must be 0 (cache off) or at least 1mb; "${value}" is ${bytes} bytes` })
    return z.NEVER
  }
  return bytes
})

const booleanText = z.enum(['true', 'false', '1', '0']).transform(v => v === 'true' || v === '1')

// The samplers of the OpenTelemetry specification that need nothing beyond the SDK.
const TRACE_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const

const otlpProtocol = z.enum(['http/json', 'http/protobuf', 'grpc']).refine(value => value !== 'grpc',
  'grpc is not supported: the gateway exports over OTLP/HTTP; point the endpoint at the collector\'s HTTP port (4318) and use http/json')

/** `key=value,key=value`, keys and values percent-encoded where they hold `,` or `=` (the specification's format). */
const resourceAttributes = z.string().transform((value, ctx) => {
  const attributes: Record<string, string> = {}
  for (const item of value.split(',').map(s => s.trim()).filter(Boolean)) {
    const parts = item.split('=')
    let key: string | undefined
    let text: string | undefined
    try {
      key = parts.length === 2 ? decodeURIComponent(parts[0]!.trim()) : undefined
      text = parts.length === 2 ? decodeURIComponent(parts[1]!.trim()) : undefined
    } catch {
      key = undefined
    }
    if (!key || text === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not key=value (percent-encode "," and "=" inside keys and values)` })
      continue
    }
    attributes[key] = text
  }
  return attributes
})

const variablesSchema = z.object({
  PUBLIC_URL: z.string().transform((value, ctx) => {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute URL such as https://app.example.com' })
      return z.NEVER
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({ code: 'custom', message: 'must be http: or https:' })
      return z.NEVER
    }
    if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: 'must be an origin only (no path, query, fragment or credentials)' })
      return z.NEVER
    }
    return url
  }),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(3000),
  ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  ADMIN_PORT: port.default(3001),
  ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters'),
  REDIS_URL: z.string().optional().superRefine((value, ctx) => {
    if (value === undefined) return
    try {
      const url = new URL(value)
      if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('scheme')
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' })
    }
  }),
  REDIS_SENTINELS: hostPortList.optional(),
  REDIS_SENTINEL_NAME: optionalText,
  REDIS_CLUSTER_NODES: hostPortList.optional(),
  REDIS_USERNAME: optionalText,
  REDIS_PASSWORD: optionalText,
  REDIS_SENTINEL_PASSWORD: optionalText,
  REDIS_TLS: booleanText.optional(),
  REDIS_TLS_CA: optionalText,
  SESSION_STORE: z.enum(['redis', 'memory']).optional(),
  SESSION_SECRET: z.string().transform((value, ctx) => {
    const secrets = value.split(',').map(s => s.trim()).filter(Boolean)
    if (secrets.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'is empty' })
      return z.NEVER
    }
    secrets.forEach((secret, index) => {
      if (Buffer.byteLength(secret) < 32) {
        ctx.addIssue({ code: 'custom', message: `key #${index + 1} is shorter than 32 bytes` })
      }
    })
    return secrets
  }),
  SESSION_COOKIE_NAME: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be a valid cookie name').optional(),
  SESSION_COOKIE_SAMESITE: z.enum(['lax', 'strict', 'Lax', 'Strict']).transform(v => v.toLowerCase() as 'lax' | 'strict').default('lax'),
  SESSION_IDLE_TIMEOUT: seconds.default(1800),
  SESSION_CACHE_MEMORY: sessionCacheMemory.default(64 * 1024 * 1024),
  SESSION_CACHE_SIZE: z.coerce.number().int().min(0).optional(),
  SESSION_ABSOLUTE_TIMEOUT: seconds.default(43200),
  OIDC_ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  OIDC_CLIENT_ID: z.string().min(1),
  // Required unless the client authenticates with a private key (checked below).
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OIDC_CLIENT_AUTH: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt']).default('client_secret_basic'),
  OIDC_CLIENT_PRIVATE_KEY: z.string().optional().transform((value, ctx) => {
    if (value === undefined) return undefined
    try {
      return readClientPrivateKey(value)
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message })
      return z.NEVER
    }
  }),
  OIDC_PAR: booleanText.default(false),
  OIDC_SCOPES: z.string().trim().min(1).default('openid profile email offline_access').refine(
    s => s.split(/\s+/).includes('openid'), 'must include openid'),
  OIDC_AUTH_PARAMS: z.string().optional().transform((value, ctx) => {
    if (value === undefined || value.trim() === '') return {}
    let parsed: unknown
    try {
      parsed = JSON.parse(value)
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of strings' })
      return z.NEVER
    }
    const result = z.record(z.string(), z.string()).safeParse(parsed)
    if (!result.success) {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of strings' })
      return z.NEVER
    }
    // These are the gateway's own; letting config override them would undo PKCE, state or nonce.
    const reserved = ['response_type', 'client_id', 'redirect_uri', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'scope']
    for (const key of Object.keys(result.data)) {
      if (reserved.includes(key)) ctx.addIssue({ code: 'custom', message: `may not set "${key}"` })
    }
    return result.data
  }),
  OIDC_ALLOW_INSECURE_HTTP: booleanText.default(false),
  OIDC_HTTP_TIMEOUT: seconds.default(10),
  OIDC_CLOCK_TOLERANCE: z.coerce.number().int().min(0).max(600).default(120),
  ROUTES_FILE: z.string().min(1),
  ROLES_CLAIM: z.string().min(1).default('roles'),
  TOKEN_REFRESH_SKEW: z.coerce.number().int().min(0).default(30),
  ALLOWED_ORIGINS: z.string().optional().transform((value, ctx) => {
    const origins: string[] = []
    for (const item of (value ?? '').split(',').map(s => s.trim()).filter(Boolean)) {
      try {
        const url = new URL(item)
        if (url.origin === 'null' || url.pathname !== '/' || url.search || url.hash) throw new Error('not an origin')
        origins.push(url.origin)
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not an origin such as https://app.example.com` })
      }
    }
    return origins
  }),
  NATIVE_REDIRECT_URIS: nativeRedirectUris,
  SESSION_BINDING: z.enum(['off', 'log', 'revoke']).default('off'),
  SESSION_BINDING_IPV4_PREFIX: z.coerce.number().int().min(0).max(32).optional(),
  SESSION_BINDING_IPV6_PREFIX: z.coerce.number().int().min(0).max(128).optional(),
  TRUST_PROXY: z.string().optional().transform((value, ctx): TrustProxy => {
    const text = (value ?? '').trim()
    if (text === '' || text === 'false') return false
    if (text === 'true') return true
    if (/^\d+$/.test(text)) return Number(text)
    const list = text.split(',').map(s => s.trim()).filter(Boolean)
    if (list.some(item => !/^[0-9a-fA-F.:/]+$/.test(item) && !['loopback', 'linklocal', 'uniquelocal'].includes(item))) {
      ctx.addIssue({ code: 'custom', message: 'must be true, false, a hop count, or a comma-separated list of addresses/CIDRs' })
      return z.NEVER
    }
    return list
  }),
  LOGIN_RATE_LIMIT: z.coerce.number().int().positive().default(30),
  PROXY_BODY_LIMIT: z.coerce.number().int().positive().default(1024 * 1024),
  STATIC_DIR: optionalText,
  SSF_ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  SSF_JWKS_URI: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  SSF_AUDIENCE: optionalText,
  SSF_PUSH_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_DELAY: z.coerce.number().int().min(0).default(5),
  SHUTDOWN_TIMEOUT: seconds.default(25),
  MAX_EVENT_LOOP_DELAY: z.coerce.number().int().min(0).default(500),
  // OpenTelemetry's standard variables, as far as the gateway acts on them (docs/operations.md#tracing);
  // the exporter reads its own others (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, certificates).
  OTEL_SDK_DISABLED: z.string().optional().transform(value => value?.trim().toLowerCase() === 'true'),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none'], { error: 'only otlp (OTLP over HTTP) or none is supported' }).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  OTEL_SERVICE_NAME: optionalText,
  OTEL_RESOURCE_ATTRIBUTES: resourceAttributes.optional(),
  OTEL_TRACES_SAMPLER: z.enum(TRACE_SAMPLERS, { error: `must be one of ${TRACE_SAMPLERS.join(', ')}` }).optional(),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1, 'must be a ratio between 0 and 1').optional(),
  OTEL_BSP_SCHEDULE_DELAY: z.coerce.number().int().positive().default(5000),
})

/** Names of every variable the gateway reads; tests compare docker-compose and the README against it. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(variablesSchema.shape)

function isLoopbackHttp (url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)
}

type Variables = z.output<typeof variablesSchema>

/** A problem that involves more than one variable, reported against the first it names. */
function problem (ctx: z.RefinementCtx, variable: string, message: string): void {
  ctx.addIssue({ code: 'custom', path: [variable], message })
}

function isCertificate (pem: string): boolean {
  try {
    return new X509Certificate(pem).subject !== undefined
  } catch {
    return false
  }
}

/** The CA certificates (PEM) in `path`, or undefined after reporting why they cannot be used. */
function readCaFile (path: string, ctx: z.RefinementCtx): string | undefined {
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch (error) {
    problem(ctx, 'REDIS_TLS_CA', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`)
    return undefined
  }
  // Parses the first certificate of the bundle: enough to catch a key, a DER file or an empty file.
  if (!isCertificate(pem)) {
    problem(ctx, 'REDIS_TLS_CA', `${path} holds no PEM certificate`)
    return undefined
  }
  return pem
}

function redisConfig (e: Variables, ctx: z.RefinementCtx) {
  const modes = [e.REDIS_URL, e.REDIS_SENTINELS, e.REDIS_CLUSTER_NODES].filter(v => v !== undefined)
  if (modes.length > 1) {
    problem(ctx, 'REDIS_URL', 'set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES')
    return undefined
  }
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS) problem(ctx, 'REDIS_SENTINEL_PASSWORD', 'is only used with REDIS_SENTINELS')
  if (modes.length === 0) return undefined
  const ca = e.REDIS_TLS_CA === undefined ? undefined : readCaFile(e.REDIS_TLS_CA, ctx)
  const caOption = ca === undefined ? {} : { ca }
  if (e.REDIS_URL) {
    // Standalone takes user, password and TLS from the URL alone: a second place would only
    // leave operators guessing which one wins.
    for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD'] as const) {
      if (e[name] !== undefined) problem(ctx, name, 'is for Sentinel and Cluster; with REDIS_URL put the user and password in the URL (rediss://user:password@host:port)')
    }
    if (e.REDIS_TLS !== undefined) problem(ctx, 'REDIS_TLS', 'is for Sentinel and Cluster; with REDIS_URL the scheme decides (rediss:// for TLS)')
    if (e.REDIS_TLS_CA !== undefined && !e.REDIS_URL.startsWith('rediss:')) problem(ctx, 'REDIS_TLS_CA', 'needs a rediss:// REDIS_URL')
    return { mode: 'standalone' as const, url: e.REDIS_URL, ...caOption }
  }
  const auth = {
    ...(e.REDIS_USERNAME ? { username: e.REDIS_USERNAME } : {}),
    ...(e.REDIS_PASSWORD ? { password: e.REDIS_PASSWORD } : {}),
    tls: e.REDIS_TLS ?? false,
    ...caOption,
  }
  if (e.REDIS_TLS_CA !== undefined && !auth.tls) problem(ctx, 'REDIS_TLS_CA', 'needs REDIS_TLS=true')
  if (e.REDIS_SENTINELS) {
    if (!e.REDIS_SENTINEL_NAME) {
      problem(ctx, 'REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS')
      return undefined
    }
    return {
      mode: 'sentinel' as const,
      sentinels: e.REDIS_SENTINELS,
      name: e.REDIS_SENTINEL_NAME,
      ...auth,
      /** The sentinels' own password; unset, they get REDIS_USERNAME and REDIS_PASSWORD as the data nodes do. */
      ...(e.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: e.REDIS_SENTINEL_PASSWORD } : {}),
    }
  }
  if (e.REDIS_CLUSTER_NODES) return { mode: 'cluster' as const, nodes: e.REDIS_CLUSTER_NODES, ...auth }
  return undefined
}

/** The Shared Signals receiver's settings; undefined (no receiver) without SSF_ISSUER. */
function ssfConfig (e: Variables, publicOrigin: string, ctx: z.RefinementCtx) {
  if (e.SSF_ISSUER === undefined) {
    for (const name of ['SSF_JWKS_URI', 'SSF_AUDIENCE', 'SSF_PUSH_TOKEN'] as const) {
      if (e[name] !== undefined) problem(ctx, name, 'needs SSF_ISSUER (without it there is no Shared Signals receiver)')
    }
    return undefined
  }
  if (e.SSF_JWKS_URI === undefined && e.SSF_ISSUER !== e.OIDC_ISSUER) {
    problem(ctx, 'SSF_JWKS_URI', 'is required when SSF_ISSUER is not OIDC_ISSUER')
  }
  if (e.SSF_JWKS_URI !== undefined) {
    const jwks = new URL(e.SSF_JWKS_URI)
    if (jwks.protocol === 'http:' && !isLoopbackHttp(jwks) && !e.OIDC_ALLOW_INSECURE_HTTP) {
      problem(ctx, 'SSF_JWKS_URI', 'plain http is only allowed for loopback addresses unless OIDC_ALLOW_INSECURE_HTTP=true')
    }
  }
  return {
    issuer: e.SSF_ISSUER,
    /** Where the transmitter's keys are; undefined: the identity provider's own (from discovery). */
    jwksUri: e.SSF_JWKS_URI,
    audience: e.SSF_AUDIENCE ?? publicOrigin,
    /** The bearer token the transmitter must send, if one is required. */
    pushToken: e.SSF_PUSH_TOKEN,
  }
}

/** How the gateway authenticates itself at the identity provider; its secret or key is required for the method. */
function clientAuthentication (e: Variables, ctx: z.RefinementCtx) {
  if (e.OIDC_CLIENT_AUTH === 'private_key_jwt') {
    if (!e.OIDC_CLIENT_PRIVATE_KEY) {
      problem(ctx, 'OIDC_CLIENT_PRIVATE_KEY', 'is required with OIDC_CLIENT_AUTH=private_key_jwt')
      return undefined
    }
    return { method: 'private_key_jwt' as const, key: e.OIDC_CLIENT_PRIVATE_KEY }
  }
  if (!e.OIDC_CLIENT_SECRET) {
    problem(ctx, 'OIDC_CLIENT_SECRET', 'is required')
    return undefined
  }
  return { method: e.OIDC_CLIENT_AUTH, secret: e.OIDC_CLIENT_SECRET }
}

/**
 * Tracing's settings; undefined (no tracing at all) unless an exporter variable asks for it: an OTLP
 * endpoint, or `OTEL_TRACES_EXPORTER=otlp` for the specification's default (http://localhost:4318).
 */
function tracingConfig (e: Variables) {
  if (e.OTEL_SDK_DISABLED || e.OTEL_TRACES_EXPORTER === 'none') return undefined
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT ?? (e.OTEL_TRACES_EXPORTER === 'otlp' ? 'http://localhost:4318' : undefined)
  // As the specification says: the traces endpoint is used as it is, the general one gets the signal's path.
  const endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base === undefined ? undefined : `${base.endsWith('/') ? base : `${base}/`}v1/traces`)
  if (endpoint === undefined) return undefined
  const sampler = e.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on'
  return {
    /** Where spans are sent, over OTLP/HTTP. */
    endpoint,
    /** What the operator asked for; spans go as OTLP/HTTP JSON, which every OTLP/HTTP receiver accepts. */
    protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/json',
    serviceName: e.OTEL_SERVICE_NAME ?? e.OTEL_RESOURCE_ATTRIBUTES?.['service.name'] ?? 'bff-gateway',
    resourceAttributes: e.OTEL_RESOURCE_ATTRIBUTES ?? {},
    sampler,
    /** The share of new traces recorded by a `traceidratio` sampler. */
    samplerRatio: e.OTEL_TRACES_SAMPLER_ARG ?? 1,
    /** Milliseconds between two batches of spans sent. */
    batchDelayMs: e.OTEL_BSP_SCHEDULE_DELAY,
  }
}

/** The variables, checked against each other and shaped for the code that uses them. */
const configSchema = variablesSchema.transform((e, ctx) => {
  const publicUrl = e.PUBLIC_URL
  const secure = publicUrl.protocol === 'https:' || publicUrl.hostname === 'localhost'
  const cookieName = e.SESSION_COOKIE_NAME ?? (secure ? '__Host-bff' : 'bff')
  if (cookieName.startsWith('__Host-') && !secure) {
    problem(ctx, 'SESSION_COOKIE_NAME', 'a __Host- cookie needs PUBLIC_URL to be https: or http://localhost')
  }
  if (e.SESSION_IDLE_TIMEOUT > e.SESSION_ABSOLUTE_TIMEOUT) {
    problem(ctx, 'SESSION_IDLE_TIMEOUT', 'must not exceed SESSION_ABSOLUTE_TIMEOUT')
  }
  const issuer = new URL(e.OIDC_ISSUER)
  if (issuer.protocol === 'http:' && !isLoopbackHttp(issuer) && !e.OIDC_ALLOW_INSECURE_HTTP) {
    problem(ctx, 'OIDC_ISSUER', 'plain http is only allowed for loopback issuers unless OIDC_ALLOW_INSECURE_HTTP=true')
  }
  const clientAuth = clientAuthentication(e, ctx)
  const redis = redisConfig(e, ctx)
  const sessionStore: 'redis' | 'memory' = e.SESSION_STORE ?? (redis ? 'redis' : 'memory')
  if (sessionStore === 'redis' && !redis) {
    problem(ctx, 'SESSION_STORE', 'redis needs REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES')
  }

  // Its problem is reported; there is no configuration to return.
  if (clientAuth === undefined) return z.NEVER
  const publicOrigin = publicUrl.origin
  return {
    publicUrl: publicOrigin,
    publicOrigin,
    host: e.HOST,
    port: e.PORT,
    adminHost: e.ADMIN_HOST,
    adminPort: e.ADMIN_PORT,
    adminToken: e.ADMIN_TOKEN,
    sessionStore,
    redis,
    /** First signs and encrypts; all verify and decrypt. */
    sessionSecrets: e.SESSION_SECRET,
    cookie: { name: cookieName, secure, sameSite: e.SESSION_COOKIE_SAMESITE },
    idleTimeoutSeconds: e.SESSION_IDLE_TIMEOUT,
    /**
     * The in-process cache of opened sessions, per instance (Redis store only): a budget of estimated
     * heap bytes and an optional cap on their number. Undefined: off (either set to 0).
     */
    sessionCache: e.SESSION_CACHE_MEMORY === 0 || e.SESSION_CACHE_SIZE === 0
      ? undefined
      : { maxBytes: e.SESSION_CACHE_MEMORY, ...(e.SESSION_CACHE_SIZE !== undefined ? { maxEntries: e.SESSION_CACHE_SIZE } : {}) },
    absoluteTimeoutSeconds: e.SESSION_ABSOLUTE_TIMEOUT,
    oidc: {
      issuer: e.OIDC_ISSUER,
      clientId: e.OIDC_CLIENT_ID,
      /** How the gateway authenticates at the token, PAR and revocation endpoints. */
      clientAuth,
      /** Authorization requests are pushed first (RFC 9126) and the browser carries only their `request_uri`. */
      par: e.OIDC_PAR,
      scopes: e.OIDC_SCOPES,
      authParams: e.OIDC_AUTH_PARAMS,
      allowInsecureHttp: issuer.protocol === 'http:',
      /** Seconds before a call to the identity provider is abandoned. */
      httpTimeoutSeconds: e.OIDC_HTTP_TIMEOUT,
      /** Seconds of clock difference with the identity provider tolerated in ID and logout token times. */
      clockToleranceSeconds: e.OIDC_CLOCK_TOLERANCE,
    },
    redirectUri: `${publicOrigin}/bff/callback`,
    /** The route policy file; read (and re-read) by `proxy/route-policy.ts`. */
    routesFile: e.ROUTES_FILE,
    rolesClaim: e.ROLES_CLAIM,
    tokenRefreshSkewSeconds: e.TOKEN_REFRESH_SKEW,
    allowedOrigins: e.ALLOWED_ORIGINS,
    /** Where a native app's sign-in may end (exact match); none: native sign-in is refused. */
    nativeRedirectUris: e.NATIVE_REDIRECT_URIS,
    sessionBinding: e.SESSION_BINDING,
    /** Network prefixes compared by session binding; absent: addresses of that family are not compared. */
    sessionBindingNetwork: {
      ...(e.SESSION_BINDING_IPV4_PREFIX !== undefined ? { ipv4Prefix: e.SESSION_BINDING_IPV4_PREFIX } : {}),
      ...(e.SESSION_BINDING_IPV6_PREFIX !== undefined ? { ipv6Prefix: e.SESSION_BINDING_IPV6_PREFIX } : {}),
    },
    trustProxy: e.TRUST_PROXY,
    /** Requests per minute per client IP to each of /bff/login, /bff/callback and /bff/native/session. */
    loginRateLimit: e.LOGIN_RATE_LIMIT,
    /** Largest request body forwarded to an upstream, in bytes. */
    proxyBodyLimit: e.PROXY_BODY_LIMIT,
    logLevel: e.LOG_LEVEL,
    shutdown: {
      /** Seconds between SIGTERM (readiness fails at once) and closing the public listener, for load balancers to notice. */
      delaySeconds: e.SHUTDOWN_DELAY,
      /** Seconds requests in flight get to finish once the listener is closed; past it the process exits non-zero. */
      timeoutSeconds: e.SHUTDOWN_TIMEOUT,
    },
    /** Mean event-loop delay (ms) over a second above which the public listener sheds requests with 503; 0: never. */
    maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY,
    /** A directory of static files (the SPA) served at `/`, same origin as the BFF endpoints. */
    staticDir: e.STATIC_DIR,
    ssf: ssfConfig(e, publicOrigin, ctx),
    /** OpenTelemetry traces over OTLP/HTTP; undefined when no exporter variable is set (nothing of tracing is wired). */
    tracing: tracingConfig(e),
  }
})

export type GatewayConfig = z.output<typeof configSchema>
export type RedisConfig = NonNullable<GatewayConfig['redis']>
export type SessionBindingMode = GatewayConfig['sessionBinding']
export type TracingConfig = NonNullable<GatewayConfig['tracing']>

/**
 * Validates the environment.
 * @throws ConfigError listing every problem, one line each, naming the variable.
 */
export function loadConfig (env: Record<string, string | undefined>): GatewayConfig {
  // An empty string means "not set" for every variable, as shells and compose files tend to pass them.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = configSchema.safeParse(cleaned)
  if (parsed.success) return parsed.data
  throw new ConfigError(parsed.error.issues.map(issue => {
    const name = String(issue.path[0] ?? 'config')
    const missing = issue.code === 'invalid_type' && cleaned[name] === undefined
    return `${name}: ${missing ? 'is required' : issue.message}`
  }))
}
