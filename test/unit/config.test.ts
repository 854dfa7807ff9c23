import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { ConfigError, loadConfig } from '../../gateway/config.js'
import { loadRoutePolicy } from '../../gateway/proxy/route-policy.js'

const ROUTES_FILE = fileURLToPath(new URL('../fixtures/routes.json', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

const valid = {
  PUBLIC_URL: 'https://app.example.com',
  ADMIN_TOKEN: 'x'.repeat(40),
  SESSION_SECRET: 's'.repeat(40),
  OIDC_ISSUER: 'https://idp.example.com',
  OIDC_CLIENT_ID: 'bff',
  OIDC_CLIENT_SECRET: 'client-secret',
  ROUTES_FILE,
}

/** What start-up reports: the variables, then (when they are valid) the route policy they name. */
async function problemsOf (env: Record<string, string | undefined>): Promise<string[]> {
  try {
    await loadRoutePolicy(loadConfig(env).routesFile)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

describe('configuration', () => {
  it('applies the contract defaults', async () => {
    const config = loadConfig(valid)
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      adminHost: '127.0.0.1',
      adminPort: 3001,
      sessionStore: 'memory',
      cookie: { name: '__Host-bff', secure: true, sameSite: 'lax' },
      idleTimeoutSeconds: 1800,
      absoluteTimeoutSeconds: 43200,
      rolesClaim: 'roles',
      tokenRefreshSkewSeconds: 30,
      allowedOrigins: [],
      sessionBinding: 'off',
      trustProxy: false,
      redirectUri: 'https://app.example.com/bff/callback',
      shutdown: { delaySeconds: 5, timeoutSeconds: 25 },
      maxEventLoopDelayMs: 500,
    })
    expect(config.oidc.scopes).toBe('openid profile email offline_access')
  })

  it('uses Redis by default once a Redis variable is set', async () => {
    const config = loadConfig({ ...valid, REDIS_URL: 'redis://127.0.0.1:6390' })
    expect(config.sessionStore).toBe('redis')
    expect(config.redis).toEqual({ mode: 'standalone', url: 'redis://127.0.0.1:6390' })
  })

  it.each([
    ['https:', 'https://app.example.com', '__Host-bff', true],
    ['http://localhost', 'http://localhost:3000', '__Host-bff', true],
    ['plain http elsewhere', 'http://127.0.0.1:3000', 'bff', false],
  ])('names the cookie for %s', async (_case, url, name, secure) => {
    const config = loadConfig({ ...valid, PUBLIC_URL: url })
    expect(config.cookie).toMatchObject({ name, secure })
  })

  it.each(['PUBLIC_URL', 'ADMIN_TOKEN', 'SESSION_SECRET', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'ROUTES_FILE'])(
    'refuses to start without %s, naming it', async (name) => {
      const problems = await problemsOf({ ...valid, [name]: undefined })
      expect(problems).toContain(`${name}: is required`)
    })

  it.each([
    ['ADMIN_TOKEN', 'short', 'ADMIN_TOKEN: must be at least 32 characters'],
    ['SESSION_SECRET', 'too-short', 'SESSION_SECRET: key #1 is shorter than 32 bytes'],
    ['SESSION_SECRET', `${'s'.repeat(40)},short`, 'SESSION_SECRET: key #2 is shorter than 32 bytes'],
    ['PUBLIC_URL', 'https://app.example.com/path', 'PUBLIC_URL: must be an origin only (no path, query, fragment or credentials)'],
    ['PORT', 'eighty', 'PORT'],
    ['SESSION_BINDING', 'maybe', 'SESSION_BINDING'],
    ['OIDC_AUTH_PARAMS', '{not json', 'OIDC_AUTH_PARAMS: must be a JSON object of strings'],
    ['OIDC_AUTH_PARAMS', '{"state":"x"}', 'OIDC_AUTH_PARAMS: may not set "state"'],
    ['OIDC_ISSUER', 'http://idp.example.com', 'OIDC_ISSUER: plain http is only allowed for loopback issuers unless OIDC_ALLOW_INSECURE_HTTP=true'],
    ['ALLOWED_ORIGINS', 'https://ok.example.com,notanorigin', 'ALLOWED_ORIGINS: "notanorigin" is not an origin such as https://app.example.com'],
    ['REDIS_URL', 'http://redis', 'REDIS_URL: must be a redis:// or rediss:// URL'],
    ['SESSION_COOKIE_NAME', '__Host-x', undefined],
    ['ROUTES_FILE', '/nonexistent/routes.json', 'ROUTES_FILE'],
    ['NATIVE_REDIRECT_URIS', 'com.example.app:/done,http://app.example.com/done', 'NATIVE_REDIRECT_URIS: "http://app.example.com/done" is not a custom-scheme URI or https URL without a fragment'],
    ['NATIVE_REDIRECT_URIS', 'javascript:alert(1)', 'NATIVE_REDIRECT_URIS: "javascript:alert(1)" is not'],
    ['NATIVE_REDIRECT_URIS', 'https://app.example.com/done#x', 'NATIVE_REDIRECT_URIS: "https://app.example.com/done#x" is not'],
    ['NATIVE_REDIRECT_URIS', 'not a uri', 'NATIVE_REDIRECT_URIS: "not a uri" is not'],
  ])('refuses %s=%s with a clear line', async (name, value, expected) => {
    const problems = await problemsOf({ ...valid, [name]: value })
    if (expected === undefined) {
      expect(problems).toEqual([])
    } else {
      expect(problems.some(p => p.startsWith(expected))).toBe(true)
    }
  })

  it('reads NATIVE_REDIRECT_URIS as written, comma-separated; none by default', () => {
    expect(loadConfig(valid).nativeRedirectUris).toEqual([])
    expect(loadConfig({ ...valid, NATIVE_REDIRECT_URIS: ' com.example.app:/oauth2redirect , https://app.example.com/native/done' }).nativeRedirectUris)
      .toEqual(['com.example.app:/oauth2redirect', 'https://app.example.com/native/done'])
  })

  it('accepts plain-http NATIVE_REDIRECT_URIS on loopback (RFC 8252 §7.3: desktop apps, the demo\'s simulated app), and only there', async () => {
    const loopback = ['http://127.0.0.1:3000/native-callback.html', 'http://[::1]:8400/done', 'http://localhost:3000/native-callback.html']
    expect(await problemsOf({ ...valid, NATIVE_REDIRECT_URIS: loopback.join(',') })).toEqual([])
    expect(loadConfig({ ...valid, NATIVE_REDIRECT_URIS: loopback.join(',') }).nativeRedirectUris).toEqual(loopback)
    expect(await problemsOf({ ...valid, NATIVE_REDIRECT_URIS: 'http://10.0.0.5:3000/done' }))
      .toEqual(['NATIVE_REDIRECT_URIS: "http://10.0.0.5:3000/done" is not a custom-scheme URI or https URL without a fragment'])
  })

  it('refuses a __Host- cookie on a plain-http public URL', async () => {
    const problems = await problemsOf({ ...valid, PUBLIC_URL: 'http://10.0.0.5:3000', SESSION_COOKIE_NAME: '__Host-bff' })
    expect(problems).toContain('SESSION_COOKIE_NAME: a __Host- cookie needs PUBLIC_URL to be https: or http://localhost')
  })

  it('reads the shutdown delay and timeout (seconds) and the load-shedding threshold (ms; 0 turns it off)', async () => {
    expect(loadConfig({ ...valid, SHUTDOWN_DELAY: '0', SHUTDOWN_TIMEOUT: '60', MAX_EVENT_LOOP_DELAY: '0' })).toMatchObject({
      shutdown: { delaySeconds: 0, timeoutSeconds: 60 },
      maxEventLoopDelayMs: 0,
    })
    const problems = await problemsOf({ ...valid, SHUTDOWN_DELAY: '-1', SHUTDOWN_TIMEOUT: '0', MAX_EVENT_LOOP_DELAY: '1.5' })
    expect(problems.map(problem => problem.split(':')[0])).toEqual(['SHUTDOWN_DELAY', 'SHUTDOWN_TIMEOUT', 'MAX_EVENT_LOOP_DELAY'])
  })

  it('sizes the session cache by memory, 64 MiB by default, with no cap on the count unless SESSION_CACHE_SIZE sets one', () => {
    expect(loadConfig(valid).sessionCache).toEqual({ maxBytes: 64 * 1024 * 1024 })
    expect(loadConfig({ ...valid, SESSION_CACHE_MEMORY: '512mb' }).sessionCache).toEqual({ maxBytes: 512 * 1024 * 1024 })
    expect(loadConfig({ ...valid, SESSION_CACHE_MEMORY: '1.5GiB', SESSION_CACHE_SIZE: '200000' }).sessionCache)
      .toEqual({ maxBytes: 1.5 * 1024 ** 3, maxEntries: 200_000 })
  })

  it.each([
    ['SESSION_CACHE_SIZE', '0'],
    ['SESSION_CACHE_MEMORY', '0'],
  ])('turns the session cache off with %s=0', (name, value) => {
    expect(loadConfig({ ...valid, [name]: value }).sessionCache).toBeUndefined()
  })

  it.each([
    ['lots', '"lots" is not a size: a number with an optional unit b, kb, mb or gb (powers of 1024), e.g. 64mb'],
    ['-64mb', '"-64mb" is not a size: a number with an optional unit b, kb, mb or gb (powers of 1024), e.g. 64mb'],
    ['64xb', '"64xb" is not a size: a number with an optional unit b, kb, mb or gb (powers of 1024), e.g. 64mb'],
    ['64', 'must be 0 (cache off) or at least 1mb; "64" is 64 bytes'],
    ['512kb', 'must be 0 (cache off) or at least 1mb; "512kb" is 524288 bytes'],
  ])('refuses SESSION_CACHE_MEMORY=%s, saying why', async (value, message) => {
    expect(await problemsOf({ ...valid, SESSION_CACHE_MEMORY: value })).toEqual([`SESSION_CACHE_MEMORY: ${message}`])
  })

  it('refuses a SESSION_CACHE_SIZE that is not a whole number of sessions', async () => {
    expect((await problemsOf({ ...valid, SESSION_CACHE_SIZE: '10k' }))[0]).toMatch(/^SESSION_CACHE_SIZE: /)
    expect((await problemsOf({ ...valid, SESSION_CACHE_SIZE: '-1' }))[0]).toMatch(/^SESSION_CACHE_SIZE: /)
  })

  it('lists every problem at once', async () => {
    const problems = await problemsOf({ PUBLIC_URL: 'nope' })
    expect(problems.length).toBeGreaterThanOrEqual(6)
  })
})

describe('configuration: the Shared Signals receiver', () => {
  it('has none without SSF_ISSUER', () => {
    expect(loadConfig(valid).ssf).toBeUndefined()
  })

  it('defaults to the IdP\'s keys when the transmitter is the IdP, and to PUBLIC_URL as the audience', () => {
    expect(loadConfig({ ...valid, SSF_ISSUER: valid.OIDC_ISSUER }).ssf).toEqual({
      issuer: 'https://idp.example.com', jwksUri: undefined, audience: 'https://app.example.com', pushToken: undefined,
    })
  })

  it('takes another transmitter with its own keys, audience and push token', () => {
    const ssf = loadConfig({ ...valid, SSF_ISSUER: 'https://risk.example', SSF_JWKS_URI: 'https://risk.example/jwks', SSF_AUDIENCE: 'urn:app', SSF_PUSH_TOKEN: 'p'.repeat(32) }).ssf
    expect(ssf).toEqual({ issuer: 'https://risk.example', jwksUri: 'https://risk.example/jwks', audience: 'urn:app', pushToken: 'p'.repeat(32) })
  })

  it.each([
    ['another transmitter without keys', { SSF_ISSUER: 'https://risk.example' }, 'SSF_JWKS_URI: is required when SSF_ISSUER is not OIDC_ISSUER'],
    ['settings without a transmitter', { SSF_PUSH_TOKEN: 'p'.repeat(32) }, 'SSF_PUSH_TOKEN: needs SSF_ISSUER (without it there is no Shared Signals receiver)'],
    ['a short push token', { SSF_ISSUER: valid.OIDC_ISSUER, SSF_PUSH_TOKEN: 'short' }, 'SSF_PUSH_TOKEN: must be at least 32 characters'],
    ['keys over plain http elsewhere than loopback', { SSF_ISSUER: 'https://risk.example', SSF_JWKS_URI: 'http://risk.example/jwks' },
      'SSF_JWKS_URI: plain http is only allowed for loopback addresses unless OIDC_ALLOW_INSECURE_HTTP=true'],
    ['an issuer that is not a URL', { SSF_ISSUER: 'risk engine' }, 'SSF_ISSUER: must be an http(s) URL'],
  ])('refuses %s', async (_case, env, problem) => {
    expect(await problemsOf({ ...valid, ...env })).toContain(problem)
  })
})

describe('Redis settings (TLS, ACL users, Sentinel password)', () => {
  let dir: string
  let caFile: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bff-config-ca-'))
    caFile = join(dir, 'ca.crt')
    // Any certificate will do: the gateway only hands it to the TLS client as a trust anchor.
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'ca.key'), '-out', caFile, '-days', '1', '-subj', '/CN=config test CA'])
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reads REDIS_TLS_CA for a rediss:// URL, whose user and password stay in the URL', async () => {
    const config = loadConfig({ ...valid, REDIS_URL: 'rediss://bff:secret@redis.example.com:6380', REDIS_TLS_CA: caFile })
    expect(config.redis).toEqual({ mode: 'standalone', url: 'rediss://bff:secret@redis.example.com:6380', ca: await readFile(caFile, 'utf8') })
  })

  it('gives Sentinel its own password and TLS with the CA', async () => {
    const config = loadConfig({
      ...valid,
      REDIS_SENTINELS: 'a:26379,b:26379',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_USERNAME: 'bff',
      REDIS_PASSWORD: 'data-password',
      REDIS_SENTINEL_PASSWORD: 'sentinel-password',
      REDIS_TLS: 'true',
      REDIS_TLS_CA: caFile,
    })
    expect(config.redis).toMatchObject({ mode: 'sentinel', username: 'bff', password: 'data-password', sentinelPassword: 'sentinel-password', tls: true })
    expect(config.redis).toHaveProperty('ca', await readFile(caFile, 'utf8'))
  })

  it.each([
    [{ REDIS_URL: 'rediss://r:6380', REDIS_TLS_CA: '/nonexistent/ca.crt' }, 'REDIS_TLS_CA: cannot read /nonexistent/ca.crt (ENOENT)'],
    [{ REDIS_URL: 'rediss://r:6380', REDIS_TLS_CA: ROUTES_FILE }, `REDIS_TLS_CA: ${ROUTES_FILE} holds no PEM certificate`],
    [{ REDIS_URL: 'redis://r:6379', REDIS_TLS_CA: 'CA' }, 'REDIS_TLS_CA: needs a rediss:// REDIS_URL'],
    [{ REDIS_CLUSTER_NODES: 'r:7000', REDIS_TLS_CA: 'CA' }, 'REDIS_TLS_CA: needs REDIS_TLS=true'],
    [{ REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 'p' }, 'REDIS_PASSWORD: is for Sentinel and Cluster; with REDIS_URL put the user and password in the URL (rediss://user:password@host:port)'],
    [{ REDIS_URL: 'redis://r:6379', REDIS_USERNAME: 'u' }, 'REDIS_USERNAME: is for Sentinel and Cluster; with REDIS_URL put the user and password in the URL (rediss://user:password@host:port)'],
    [{ REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true' }, 'REDIS_TLS: is for Sentinel and Cluster; with REDIS_URL the scheme decides (rediss:// for TLS)'],
    [{ REDIS_CLUSTER_NODES: 'r:7000', REDIS_SENTINEL_PASSWORD: 'p' }, 'REDIS_SENTINEL_PASSWORD: is only used with REDIS_SENTINELS'],
  ])('refuses %o with a clear line', async (env, expected) => {
    const resolved = Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value === 'CA' ? caFile : value]))
    expect(await problemsOf({ ...valid, ...resolved })).toContain(expected)
  })
})

describe('tracing (OpenTelemetry\'s standard variables)', () => {
  it('is off without an exporter variable, whatever else of OTEL_* is set', () => {
    expect(loadConfig(valid).tracing).toBeUndefined()
    expect(loadConfig({ ...valid, OTEL_SERVICE_NAME: 'bff', OTEL_TRACES_SAMPLER: 'always_on' }).tracing).toBeUndefined()
  })

  it('sends to OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces, or to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is', () => {
    expect(loadConfig({ ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing).toEqual({
      endpoint: 'http://collector:4318/v1/traces',
      protocol: 'http/json',
      serviceName: 'bff-gateway',
      resourceAttributes: {},
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      batchDelayMs: 5000,
    })
    expect(loadConfig({ ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com/base/' }).tracing?.endpoint).toBe('https://otel.example.com/base/v1/traces')
    expect(loadConfig({ ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom' }).tracing?.endpoint)
      .toBe('http://b:4318/custom')
    // The specification's default endpoint, when only the exporter is named.
    expect(loadConfig({ ...valid, OTEL_TRACES_EXPORTER: 'otlp' }).tracing?.endpoint).toBe('http://localhost:4318/v1/traces')
  })

  it('stays off with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true, even with an endpoint', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }
    expect(loadConfig({ ...valid, ...endpoint, OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined()
    expect(loadConfig({ ...valid, ...endpoint, OTEL_SDK_DISABLED: 'TRUE' }).tracing).toBeUndefined()
    expect(loadConfig({ ...valid, ...endpoint, OTEL_SDK_DISABLED: 'false' }).tracing).toBeDefined()
  })

  it('reads the service, its resource attributes and the sampler', () => {
    const tracing = loadConfig({
      ...valid,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod, service.name=from-attributes,team=a%2Cb%3Dc',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    }).tracing
    expect(tracing).toMatchObject({
      serviceName: 'from-attributes',
      resourceAttributes: { 'deployment.environment.name': 'prod', 'service.name': 'from-attributes', team: 'a,b=c' },
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      protocol: 'http/protobuf',
    })
    // OTEL_SERVICE_NAME wins over the attribute, as the specification says.
    expect(loadConfig({ ...valid, OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'bff-eu', OTEL_RESOURCE_ATTRIBUTES: 'service.name=x' }).tracing?.serviceName).toBe('bff-eu')
  })

  it.each([
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318', 'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL'],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'grpc://collector:4317', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: must be an http(s) URL'],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc', 'OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported'],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'thrift', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'],
    ['OTEL_TRACES_EXPORTER', 'zipkin', 'OTEL_TRACES_EXPORTER: only otlp (OTLP over HTTP) or none is supported'],
    ['OTEL_TRACES_SAMPLER', 'jaeger_remote', 'OTEL_TRACES_SAMPLER: must be one of always_on'],
    ['OTEL_TRACES_SAMPLER_ARG', '2', 'OTEL_TRACES_SAMPLER_ARG: must be a ratio between 0 and 1'],
    ['OTEL_RESOURCE_ATTRIBUTES', 'team=a,broken', 'OTEL_RESOURCE_ATTRIBUTES: "broken" is not key=value'],
    ['OTEL_BSP_SCHEDULE_DELAY', '0', 'OTEL_BSP_SCHEDULE_DELAY'],
  ])('refuses %s=%s with a clear line', async (name, value, expected) => {
    const problems = await problemsOf({ ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', [name]: value })
    expect(problems.some(p => p.startsWith(expected)), problems.join('\n')).toBe(true)
  })
})

describe('gateway process start-up with a bad configuration', () => {
  it('exits non-zero before listening, one plain line per problem naming the variable, no secret echoed', () => {
    const env = { PATH: process.env.PATH, ...valid, OIDC_CLIENT_ID: '', ADMIN_TOKEN: 'tiny-secret-value', SESSION_CACHE_MEMORY: '64 gigs' }
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], { cwd: ROOT, env, encoding: 'utf8', timeout: 30_000 })
    expect(result.status).not.toBe(0)
    const lines = result.stderr.trim().split('\n').filter(l => !l.startsWith('npm warn'))
    expect(lines).toContain('config error: OIDC_CLIENT_ID: is required')
    expect(lines).toContain('config error: ADMIN_TOKEN: must be at least 32 characters')
    expect(lines).toContain('config error: SESSION_CACHE_MEMORY: "64 gigs" is not a size: a number with an optional unit b, kb, mb or gb (powers of 1024), e.g. 64mb')
    expect(result.stderr).not.toContain('tiny-secret-value')
    expect(result.stdout).not.toContain('listener')
  })
})
