/**
 * The gateway's configuration: one schema over the environment, validated once
 * at start-up. Only `server.ts` passes `process.env` in; everything else gets the
 * typed result.
 */
import { z } from 'zod'
import { loadRoutePolicyFile, RoutePolicyError, type RoutePolicy } from './proxy/route-policy.js'

export type SessionBindingMode = 'off' | 'log' | 'revoke'
export type TrustProxy = boolean | number | string[]

export interface HostPort { host: string, port: number }

export type RedisConfig =
  | { mode: 'standalone', url: string }
  | { mode: 'sentinel', sentinels: HostPort[], name: string, username?: string, password?: string, tls: boolean }
  | { mode: 'cluster', nodes: HostPort[], username?: string, password?: string, tls: boolean }

export interface GatewayConfig {
  publicUrl: string
  publicOrigin: string
  host: string
  port: number
  adminHost: string
  adminPort: number
  adminToken: string
  sessionStore: 'redis' | 'memory'
  redis?: RedisConfig
  /** First signs and encrypts; all verify and decrypt. */
  sessionSecrets: string[]
  cookie: { name: string, secure: boolean, sameSite: 'lax' | 'strict' }
  idleTimeoutSeconds: number
  /** Opened sessions kept in process per instance (Redis store only); 0 turns the cache off. */
  sessionCacheSize: number
  absoluteTimeoutSeconds: number
  oidc: {
    issuer: string
    clientId: string
    clientSecret: string
    scopes: string
    authParams: Record<string, string>
    allowInsecureHttp: boolean
    /** Seconds before a call to the identity provider is abandoned. */
    httpTimeoutSeconds: number
    /** Seconds of clock difference with the identity provider tolerated in ID and logout token times. */
    clockToleranceSeconds: number
  }
  redirectUri: string
  routes: RoutePolicy
  routesFile: string
  rolesClaim: string
  tokenRefreshSkewSeconds: number
  allowedOrigins: string[]
  sessionBinding: SessionBindingMode
  /** Network prefixes compared by session binding; absent: addresses of that family are not compared. */
  sessionBindingNetwork: { ipv4Prefix?: number, ipv6Prefix?: number }
  trustProxy: TrustProxy
  /** Requests per minute per client IP to each of /bff/login and /bff/callback. */
  loginRateLimit: number
  /** Largest request body forwarded to an upstream, in bytes. */
  proxyBodyLimit: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** A directory of static files (the SPA) served at `/`, same origin as the BFF endpoints. */
  staticDir?: string
}

/** Raised when the environment does not describe a runnable gateway; one line per problem. */
export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`)
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

const booleanText = z.enum(['true', 'false', '1', '0']).transform(v => v === 'true' || v === '1')

const envSchema = z.object({
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
  REDIS_TLS: booleanText.optional(),
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
  SESSION_CACHE_SIZE: z.coerce.number().int().min(0).default(10_000),
  SESSION_ABSOLUTE_TIMEOUT: seconds.default(43200),
  OIDC_ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  OIDC_CLIENT_ID: z.string().min(1),
  OIDC_CLIENT_SECRET: z.string().min(1),
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
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

/** Names of every variable the gateway reads; tests compare docker-compose and the README against it. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape)

function isLoopbackHttp (url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)
}

/**
 * Validates the environment and loads the route policy.
 * @throws ConfigError listing every problem, one line each, naming the variable.
 */
export async function loadConfig (env: Record<string, string | undefined>): Promise<GatewayConfig> {
  // An empty string means "not set" for every variable, as shells and compose files tend to pass them.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = envSchema.safeParse(cleaned)
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map(issue => {
      const name = String(issue.path[0] ?? 'config')
      const missing = issue.code === 'invalid_type' && cleaned[name] === undefined
      return `${name}: ${missing ? 'is required' : issue.message}`
    }))
  }
  const e = parsed.data
  const problems: string[] = []

  const publicUrl = e.PUBLIC_URL
  const secure = publicUrl.protocol === 'https:' || publicUrl.hostname === 'localhost'
  const cookieName = e.SESSION_COOKIE_NAME ?? (secure ? '__Host-bff' : 'bff')
  if (cookieName.startsWith('__Host-') && !secure) {
    problems.push('SESSION_COOKIE_NAME: a __Host- cookie needs PUBLIC_URL to be https: or http://localhost')
  }
  if (e.SESSION_IDLE_TIMEOUT > e.SESSION_ABSOLUTE_TIMEOUT) {
    problems.push('SESSION_IDLE_TIMEOUT: must not exceed SESSION_ABSOLUTE_TIMEOUT')
  }

  const issuer = new URL(e.OIDC_ISSUER)
  if (issuer.protocol === 'http:' && !isLoopbackHttp(issuer) && !e.OIDC_ALLOW_INSECURE_HTTP) {
    problems.push('OIDC_ISSUER: plain http is only allowed for loopback issuers unless OIDC_ALLOW_INSECURE_HTTP=true')
  }

  const redis = redisConfig(e, problems)
  const sessionStore = e.SESSION_STORE ?? (redis ? 'redis' : 'memory')
  if (sessionStore === 'redis' && !redis) {
    problems.push('SESSION_STORE: redis needs REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES')
  }

  let routes: RoutePolicy | undefined
  try {
    routes = await loadRoutePolicyFile(e.ROUTES_FILE)
  } catch (error) {
    if (error instanceof RoutePolicyError) {
      problems.push(...error.problems.map(p => `ROUTES_FILE: ${p}`))
    } else {
      problems.push(`ROUTES_FILE: cannot be read (${(error as Error).message})`)
    }
  }

  if (problems.length > 0 || routes === undefined) throw new ConfigError(problems)

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
    ...(redis ? { redis } : {}),
    sessionSecrets: e.SESSION_SECRET,
    cookie: { name: cookieName, secure, sameSite: e.SESSION_COOKIE_SAMESITE },
    idleTimeoutSeconds: e.SESSION_IDLE_TIMEOUT,
    sessionCacheSize: e.SESSION_CACHE_SIZE,
    absoluteTimeoutSeconds: e.SESSION_ABSOLUTE_TIMEOUT,
    oidc: {
      issuer: e.OIDC_ISSUER,
      clientId: e.OIDC_CLIENT_ID,
      clientSecret: e.OIDC_CLIENT_SECRET,
      scopes: e.OIDC_SCOPES,
      authParams: e.OIDC_AUTH_PARAMS,
      allowInsecureHttp: issuer.protocol === 'http:',
      httpTimeoutSeconds: e.OIDC_HTTP_TIMEOUT,
      clockToleranceSeconds: e.OIDC_CLOCK_TOLERANCE,
    },
    redirectUri: `${publicOrigin}/bff/callback`,
    routes,
    routesFile: e.ROUTES_FILE,
    rolesClaim: e.ROLES_CLAIM,
    tokenRefreshSkewSeconds: e.TOKEN_REFRESH_SKEW,
    allowedOrigins: e.ALLOWED_ORIGINS,
    sessionBinding: e.SESSION_BINDING,
    sessionBindingNetwork: {
      ...(e.SESSION_BINDING_IPV4_PREFIX !== undefined ? { ipv4Prefix: e.SESSION_BINDING_IPV4_PREFIX } : {}),
      ...(e.SESSION_BINDING_IPV6_PREFIX !== undefined ? { ipv6Prefix: e.SESSION_BINDING_IPV6_PREFIX } : {}),
    },
    trustProxy: e.TRUST_PROXY,
    loginRateLimit: e.LOGIN_RATE_LIMIT,
    proxyBodyLimit: e.PROXY_BODY_LIMIT,
    logLevel: e.LOG_LEVEL,
    ...(e.STATIC_DIR ? { staticDir: e.STATIC_DIR } : {}),
  }
}

type ParsedEnv = z.infer<typeof envSchema>

function redisConfig (e: ParsedEnv, problems: string[]): RedisConfig | undefined {
  const modes = [e.REDIS_URL, e.REDIS_SENTINELS, e.REDIS_CLUSTER_NODES].filter(v => v !== undefined)
  if (modes.length > 1) {
    problems.push('REDIS_URL: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES')
    return undefined
  }
  const auth = {
    ...(e.REDIS_USERNAME ? { username: e.REDIS_USERNAME } : {}),
    ...(e.REDIS_PASSWORD ? { password: e.REDIS_PASSWORD } : {}),
    tls: e.REDIS_TLS ?? false,
  }
  if (e.REDIS_URL) return { mode: 'standalone', url: e.REDIS_URL }
  if (e.REDIS_SENTINELS) {
    if (!e.REDIS_SENTINEL_NAME) {
      problems.push('REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS')
      return undefined
    }
    return { mode: 'sentinel', sentinels: e.REDIS_SENTINELS, name: e.REDIS_SENTINEL_NAME, ...auth }
  }
  if (e.REDIS_CLUSTER_NODES) return { mode: 'cluster', nodes: e.REDIS_CLUSTER_NODES, ...auth }
  return undefined
}
