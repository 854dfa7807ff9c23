/**
 * The contenders, each started (in its own process but the first) and signed
 * in, ready to be loaded: what URL to hit and with which headers. (e) is a
 * route of (d)'s process: the same session, another token policy.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startIdentityProvider, type IdentityProvider } from '../upstream-mock/idp.js'
import { freePort } from '../test/helpers/free-port.js'
import { examplePolicy, gatewayProcessEnv, TEST_ADMIN_TOKEN, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../test/helpers/gateway.js'
import { HttpBrowser } from '../test/helpers/http-browser.js'
import { loginThroughIdp } from '../test/helpers/login-flow.js'
import type { CookieMix } from './cookie-mix.js'
import { startChild, type BenchChild } from './processes.js'
import { ORDERS_BODY, type CookieRotation, type LoadResult } from './protocol.js'
import { redisCommandCounter } from './redis-commands.js'
import { parseSessionCacheMetrics, type SessionCacheCounters } from './session-cache-stats.js'

/**
 * (f), (g) and (h), the many-users and cold contenders, are in many-users.ts; (i), the refresh
 * contender, in refresh-contender.ts; (l) and (m), sign-ins after the table, in login-contenders.ts.
 */
export type ContenderKey = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'i' | 'l' | 'm'

export interface Contender {
  key: ContenderKey
  name: string
  /** What the load generator requests. */
  url: string
  headers: Record<string, string>
  /** Seconds the contender's process has spent in garbage collection so far, where it reports that. */
  gcSeconds?: () => Promise<number>
  /** Commands the Redis it uses has processed so far (shared with (c), idle meanwhile), where it reports them. */
  redisCommands?: () => Promise<number>
  /** Many users: each request carries one of these sessions' cookies, picked at random, instead of the `cookie` of `headers`. */
  cookies?: CookieMix
  /** Its gateway's session-cache counters so far, where it has a session cache. */
  sessionCache?: () => Promise<SessionCacheCounters>
  /** Before each of its load runs (warm-up included): e.g. the sessions to spread the run across. */
  beforeRun?: (seconds: number) => Promise<{ rotation?: CookieRotation }>
  /** After each of its load runs, with its result (e.g. to check it against the IdP's counts). */
  afterRun?: (result: LoadResult, seconds: number) => Promise<void>
  close (): Promise<void>
}

export interface GatewayContender extends Contender {
  /** Replaces the gateway process by one on the same port, Redis and secrets (the session survives), with these Node flags. */
  restart (nodeArgs: string[]): Promise<void>
  /** (e): the same gateway and session, on a route whose token is narrowed to another audience and DPoP-bound. */
  narrowed (): Contender
  /** The environment its process started with: another gateway on the same Redis, IdP and secrets starts from it. */
  readonly env: Readonly<Record<string, string>>
  /** The value of alice's session cookie (its name is in the gateway's configuration). */
  readonly sessionCookie: string
}

/** The audience of (e)'s route: an API of the bench's IdP, whose tokens the stub accepts as any other. */
const NARROWED_AUDIENCE = 'https://orders-dpop.bench.example'

/**
 * The contract's example policy, plus `/narrowed`: the same stub, reached with a token narrowed to
 * another audience (a refresh with RFC 8707 `resource`, once, then kept) and bound with DPoP (a
 * proof signed per request).
 */
function benchPolicy (stubUrl: string) {
  const example = examplePolicy(stubUrl)
  return {
    routes: [
      ...example.routes,
      {
        prefix: '/narrowed',
        upstream: stubUrl,
        rewritePrefix: '',
        token: { type: 'user', audience: NARROWED_AUDIENCE, dpop: true },
        allow: [{ methods: ['GET'], path: '/orders', roles: ['user'] }],
      },
    ],
  }
}

const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) bff-bench'
/** What every request carries besides its credentials, as a browser's fetch() would. */
export const BROWSER_HEADERS = { 'user-agent': USER_AGENT, accept: 'application/json' }
const ALICE = { username: 'alice', password: 'alice-password' }
/** Long enough that no refresh happens during a run. */
const ACCESS_TOKEN_TTL_SECONDS = 24 * 3600

/** Fails unless one request with these headers gets the upstream's exact answer. */
export async function assertServes (contender: Pick<Contender, 'name' | 'url' | 'headers'>): Promise<void> {
  const response = await fetch(contender.url, { headers: contender.headers, redirect: 'manual' })
  const body = await response.text()
  if (response.status !== 200 || body !== ORDERS_BODY) {
    throw new Error(`${contender.name}: GET ${contender.url} answered ${response.status} ${body.slice(0, 300)}`)
  }
  // autocannon reconnects after a close but keeps the lost request's start time, so every latency would be wrong.
  if (response.headers.get('connection')?.toLowerCase() === 'close') {
    throw new Error(`${contender.name}: answers with Connection: close; its latencies could not be measured`)
  }
}

/**
 * The gateway sends the upstream its session's real access token (a JWT from the mock IdP, about
 * 700 characters); every other contender sends a stand-in as long, so each upstream request weighs
 * the same and the comparison is of the work, not of the bytes. A control run has no gateway to
 * measure and uses this length.
 */
export const DEFAULT_TOKEN_LENGTH = 694

/** A stand-in token of this length. */
export function staticToken (length: number): string {
  return randomBytes(Math.ceil(length * 3 / 4) + 1).toString('base64url').slice(0, length)
}

/** How long the last token was that reached the stub (after the gateway served a request: the gateway's). */
export async function lastTokenLength (stubUrl: string): Promise<number> {
  const response = await fetch(`${stubUrl}/bench/last-token-length`)
  const { length } = await response.json() as { length: number }
  if (response.status !== 200 || !(length > 0)) throw new Error(`the stub saw no token (${response.status})`)
  return length
}

export function directUpstream (stubUrl: string, token: string): Contender {
  return {
    key: 'a',
    name: '(a) upstream stub, direct',
    url: `${stubUrl}/orders`,
    headers: { ...BROWSER_HEADERS, authorization: `Bearer ${token}` },
    close: async () => {},
  }
}

function fromChild (child: BenchChild, key: ContenderKey, name: string, headers: Record<string, string>): Contender {
  return { key, name, url: `${child.url}/api/orders`, headers: { ...BROWSER_HEADERS, ...headers }, close: () => child.stop() }
}

export async function bareProxy (stubUrl: string, token: string): Promise<Contender> {
  const child = await startChild('contender-bare-proxy', { env: { BENCH_UPSTREAM: stubUrl, BENCH_TOKEN: token } })
  return fromChild(child, 'b', '(b) bare @fastify/http-proxy', {})
}

/** For `--control`: the bare proxy once more, in (d)'s place, so (d) ÷ (b) shows what noise alone does. */
export async function secondBareProxy (stubUrl: string, token: string): Promise<Contender> {
  const child = await startChild('contender-bare-proxy', { env: { BENCH_UPSTREAM: stubUrl, BENCH_TOKEN: token } })
  return fromChild(child, 'd', '(d) control: a second bare @fastify/http-proxy', {})
}

export async function expressStack (stubUrl: string, redisUrl: string, token: string): Promise<Contender> {
  const child = await startChild('contender-express', { env: { BENCH_UPSTREAM: stubUrl, BENCH_REDIS_URL: redisUrl, BENCH_TOKEN: token } })
  try {
    const response = await fetch(`${child.url}/login`, { method: 'POST', headers: BROWSER_HEADERS })
    const sid = response.headers.getSetCookie().map(line => line.split(';', 1)[0]).find(pair => pair?.startsWith('sid='))
    if (response.status !== 204 || !sid) throw new Error(`express login answered ${response.status} without a session cookie`)
    return fromChild(child, 'c', '(c) express + express-session/connect-redis + http-proxy-middleware', { cookie: sid })
  } catch (error) {
    await child.stop()
    throw error
  }
}

/** A gateway's admin /metrics, as text. */
async function metricsText (url: string): Promise<string> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`)
  return response.text()
}

/** The gateway's session-cache counters (undefined where it does not report them). */
export async function sessionCacheFromMetrics (url: string): Promise<SessionCacheCounters> {
  return parseSessionCacheMetrics(await metricsText(url))
}

/** The sum of the gateway's own `bff_nodejs_gc_duration_seconds` (every kind of collection). */
export async function gcSecondsFromMetrics (url: string): Promise<number> {
  const text = await metricsText(url)
  let total = 0
  for (const match of text.matchAll(/^bff_nodejs_gc_duration_seconds_sum(?:\{[^}]*\})? (\S+)$/gm)) total += Number(match[1])
  return total
}

export interface GatewayContenderOptions {
  stubUrl: string
  redisUrl: string
  logLevel: string
}

/**
 * Starts the bench's identity provider here (it is idle during the load: the
 * access token outlives the run), the gateway in a child process, and signs
 * alice in through the real login flow.
 */
export async function gatewayContender (options: GatewayContenderOptions): Promise<GatewayContender> {
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  const dir = await mkdtemp(join(tmpdir(), 'bff-bench-'))
  let idp: IdentityProvider | undefined
  let child: BenchChild | undefined
  let closing: Promise<void> | undefined
  const commandCounter = redisCommandCounter(options.redisUrl)
  const close = () => {
    closing ??= (async () => {
      commandCounter.close()
      await child?.stop()
      await idp?.close()
      await rm(dir, { recursive: true, force: true })
    })()
    return closing
  }
  try {
    idp = await startIdentityProvider({
      accessTokenTtl: ACCESS_TOKEN_TTL_SECONDS,
      // The stub checks no audience; any resource indicator makes the IdP issue JWT access tokens, as in production.
      apiAudience: options.stubUrl,
      resourceServers: [{ audience: NARROWED_AUDIENCE, scopes: ['orders:read'] }],
      clients: [{
        clientId: TEST_CLIENT_ID,
        clientSecret: TEST_CLIENT_SECRET,
        redirectUris: [`${publicUrl}/bff/callback`],
        postLogoutRedirectUris: [`${publicUrl}/`],
      }],
    })
    const routesFile = join(dir, 'routes.json')
    await writeFile(routesFile, JSON.stringify(benchPolicy(options.stubUrl)))
    const adminPort = await freePort()
    const env = {
      ...gatewayProcessEnv({ publicUrl, port, adminPort, redisUrl: options.redisUrl, issuer: idp.issuer, routesFile, logLevel: options.logLevel }),
      OIDC_AUTH_PARAMS: JSON.stringify({ resource: options.stubUrl }),
    }
    child = await startChild('contender-gateway', { env })

    const browser = new HttpBrowser({ userAgent: USER_AGENT })
    await loginThroughIdp(browser, publicUrl, ALICE)
    const cookie = browser.cookie(`${publicUrl}/api/orders`, 'bff')
    if (!cookie) throw new Error('the gateway set no "bff" session cookie at login')

    const headers = { ...BROWSER_HEADERS, cookie: `${cookie.name}=${cookie.value}` }
    const gcSeconds = () => gcSecondsFromMetrics(`http://127.0.0.1:${adminPort}/metrics`)
    const redisCommands = () => commandCounter.read()
    return {
      key: 'd',
      name: '(d) this gateway',
      url: `${publicUrl}/api/orders`,
      headers,
      gcSeconds,
      redisCommands,
      sessionCache: () => sessionCacheFromMetrics(`http://127.0.0.1:${adminPort}/metrics`),
      close,
      env,
      sessionCookie: cookie.value,
      narrowed: () => ({
        key: 'e',
        name: '(e) this gateway, narrowed + DPoP route',
        url: `${publicUrl}/narrowed/orders`,
        headers,
        gcSeconds,
        redisCommands,
        // (d)'s process: closed with (d).
        close: async () => {},
      }),
      async restart (nodeArgs) {
        await child?.stop()
        child = undefined
        child = await startChild('contender-gateway', { env, nodeArgs })
      },
    }
  } catch (error) {
    await close()
    throw error
  }
}
