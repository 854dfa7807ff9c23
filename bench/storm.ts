/**
 * The refresh storm: two gateway instances on one Redis, a short-lived access
 * token, and a burst of concurrent requests of one session, split between the
 * instances, arriving just after the token expired. Exactly one call may reach
 * the IdP's token endpoint, and no request may fail.
 *
 * Each round has two expiries: a storm of N requests (single flight under
 * pressure), then a probe of a few requests, whose latency is not drowned in
 * the queueing of N requests and so shows what waiting for a refresh costs.
 * Each is compared with the same burst right after, with a fresh token.
 *
 * Runs in this process (startStack): these are latencies of bursts, not
 * throughput, so sharing the event loop with the stack is acceptable.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import type { Counter, Histogram } from 'prom-client'
import { startStack, type Stack } from '../test/helpers/stack.js'
import { HttpBrowser } from '../test/helpers/http-browser.js'
import { loginThroughIdp } from '../test/helpers/login-flow.js'
import { median, percentile } from './percentiles.js'

export interface BurstStats {
  p50Ms: number
  maxMs: number
}

export interface BurstInstanceReport {
  url: string
  expired: BurstStats
  fresh: BurstStats
  /** Calls this instance made to the token endpoint. */
  refreshAttempts: number
  /** Times this instance waited for another instance's refresh (once per refresh, not per request). */
  lockWaits: number
  /** Time this instance spent at the token endpoint (gateway metric), 0 if it did not refresh. */
  refreshMs: number
}

/** One burst after expiry, and the same burst with a fresh token. */
export interface ExpiredBurstReport {
  requests: number
  /** `idp.tokenCalls.refreshToken` over the burst after expiry; must be 1. */
  tokenEndpointCalls: number
  /** Non-200 answers and failed requests in both bursts; must be 0. */
  errors: number
  statuses: Record<string, number>
  /** Every request of it arrived after expiry, so every one waited for the refresh. */
  expired: BurstStats
  fresh: BurstStats
  instances: BurstInstanceReport[]
  pass: boolean
}

export interface StormRound {
  accessTokenTtlSeconds: number
  storm: ExpiredBurstReport
  probe: ExpiredBurstReport
  /** One request at a time, fresh token: an unloaded request. */
  singleP50Ms: number
  pass: boolean
}

export interface StormOptions {
  requests: number
  probeRequests: number
  rounds: number
  accessTokenTtlSeconds: number
  log: (line: string) => void
}

interface Timed {
  instance: number
  status: number
  ms: number
}

interface RefreshCounters {
  attempts: number
  waits: number
  seconds: number
}

const EXPIRY_MARGIN_MS = 250
const SINGLE_REQUESTS = 10

function stats (samples: readonly Timed[]): BurstStats {
  const ms = samples.filter(s => s.status === 200).map(s => s.ms)
  return { p50Ms: percentile(ms, 50), maxMs: percentile(ms, 100) }
}

async function counterValue (counter: Counter): Promise<number> {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0)
}

async function histogramSum (histogram: Histogram): Promise<number> {
  return (await histogram.get()).values.filter(v => v.metricName?.endsWith('_sum')).reduce((sum, v) => sum + v.value, 0)
}

function refreshCounters (stack: Stack): Promise<RefreshCounters[]> {
  return Promise.all(stack.gateways.map(async ({ gateway: { app: { metrics } } }) => ({
    attempts: await counterValue(metrics.refreshAttempts),
    waits: await counterValue(metrics.refreshLockWaits),
    seconds: await histogramSum(metrics.refreshDuration),
  })))
}

async function timedGet (agent: Agent, url: string, cookie: string, instance: number): Promise<Timed> {
  const started = performance.now()
  try {
    const response = await request(url, { dispatcher: agent, headers: { cookie, accept: 'application/json' } })
    await response.body.text()
    return { instance, status: response.statusCode, ms: performance.now() - started }
  } catch {
    return { instance, status: 0, ms: performance.now() - started }
  }
}

/** All at once, alternating between the instances. */
function burst (agent: Agent, urls: readonly string[], cookie: string, count: number): Promise<Timed[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => {
    const instance = i % urls.length
    return timedGet(agent, urls[instance] as string, cookie, instance)
  }))
}

async function singles (agent: Agent, urls: readonly string[], cookie: string): Promise<number> {
  const ms: number[] = []
  for (let i = 0; i < SINGLE_REQUESTS; i++) {
    const instance = i % urls.length
    const timed = await timedGet(agent, urls[instance] as string, cookie, instance)
    if (timed.status === 200) ms.push(timed.ms)
  }
  return median(ms)
}

export async function runRefreshStorm (options: StormOptions): Promise<StormRound[]> {
  const ttlMs = options.accessTokenTtlSeconds * 1000
  const stack: Stack = await startStack({
    instances: 2,
    store: 'redis',
    idp: { accessTokenTtl: options.accessTokenTtlSeconds },
    gatewayEnv: { TOKEN_REFRESH_SKEW: '0' },
  })
  // Connections stay open across the wait for expiry, so a storm measures the gateway, not TCP set-up.
  const agent = new Agent({ keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 })
  try {
    const browser = new HttpBrowser()
    await loginThroughIdp(browser, stack.publicUrl, { username: 'alice', password: 'alice-password' })
    // The gateway counts the token's life from its receipt, which was before this.
    let tokenIssuedBy = Date.now()
    const session = browser.cookie(`${stack.publicUrl}/api/orders`, 'bff')
    if (!session) throw new Error('the gateway set no "bff" session cookie at login')
    const cookie = `${session.name}=${session.value}`
    const urls = stack.gateways.map(g => `${g.url}/api/orders`)

    // A refresh outside an expired burst (a measurement that outlasted the token) restarts the token's clock.
    const refreshedDuring = async (measure: () => Promise<unknown>): Promise<boolean> => {
      const calls = stack.idp.tokenCalls.refreshToken
      await measure()
      if (stack.idp.tokenCalls.refreshToken === calls) return false
      tokenIssuedBy = Date.now()
      return true
    }

    async function expiredBurst (label: string, count: number): Promise<ExpiredBurstReport> {
      const wait = tokenIssuedBy + ttlMs + EXPIRY_MARGIN_MS - Date.now()
      if (wait > 0) await sleep(wait)
      const before = await refreshCounters(stack)
      stack.idp.resetCounters()
      const expired = await burst(agent, urls, cookie, count)
      const tokenEndpointCalls = stack.idp.tokenCalls.refreshToken
      // The refresh ended before the first answer: the new token lives until now + TTL at the latest.
      tokenIssuedBy = Date.now()
      const after = await refreshCounters(stack)

      let fresh: Timed[] = []
      if (await refreshedDuring(async () => { fresh = await burst(agent, urls, cookie, count) })) {
        options.log(`${label}: the fresh-token burst outlasted the ${options.accessTokenTtlSeconds} s token; raise BENCH_STORM_TTL`)
      }
      const statuses: Record<string, number> = {}
      for (const t of expired) statuses[t.status] = (statuses[t.status] ?? 0) + 1
      const errors = [...expired, ...fresh].filter(t => t.status !== 200).length
      const report: ExpiredBurstReport = {
        requests: count,
        tokenEndpointCalls,
        errors,
        statuses,
        expired: stats(expired),
        fresh: stats(fresh),
        instances: urls.map((url, i) => ({
          url,
          expired: stats(expired.filter(t => t.instance === i)),
          fresh: stats(fresh.filter(t => t.instance === i)),
          refreshAttempts: (after[i]?.attempts ?? 0) - (before[i]?.attempts ?? 0),
          lockWaits: (after[i]?.waits ?? 0) - (before[i]?.waits ?? 0),
          refreshMs: ((after[i]?.seconds ?? 0) - (before[i]?.seconds ?? 0)) * 1000,
        })),
        pass: tokenEndpointCalls === 1 && errors === 0,
      }
      options.log(`${label}: ${count} requests, ${tokenEndpointCalls} token-endpoint call(s), ${errors} error(s); ` +
        `after expiry p50 ${report.expired.p50Ms.toFixed(1)} / max ${report.expired.maxMs.toFixed(1)} ms, ` +
        `fresh token p50 ${report.fresh.p50Ms.toFixed(1)} / max ${report.fresh.maxMs.toFixed(1)} ms`)
      return report
    }

    // Opens the connections and warms both instances and the API's key set; discarded.
    await refreshedDuring(() => burst(agent, urls, cookie, options.requests))

    const rounds: StormRound[] = []
    for (let round = 1; round <= options.rounds; round++) {
      const storm = await expiredBurst(`storm ${round}`, options.requests)
      const probe = await expiredBurst(`probe ${round}`, options.probeRequests)
      let singleP50Ms = Number.NaN
      await refreshedDuring(async () => { singleP50Ms = await singles(agent, urls, cookie) })
      rounds.push({ accessTokenTtlSeconds: options.accessTokenTtlSeconds, storm, probe, singleP50Ms, pass: storm.pass && probe.pass })
    }
    return rounds
  } finally {
    await agent.close()
    await stack.close()
  }
}
