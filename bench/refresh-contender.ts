/**
 * Contender (i): the gateway while its sessions' access tokens expire and are
 * refreshed, steadily, during the load. Its own gateway process, Redis and IdP
 * process (the IdP issues access tokens of a few seconds; TOKEN_REFRESH_SKEW=0,
 * so a token is refreshed when it has expired, not before). Its sessions are
 * signed in through real logins at set-up; each load run spreads its requests
 * across a changing set of them (refresh-plan.ts, cookie-rotation.ts), and is
 * checked against the IdP's count of refresh-token grants: exactly one per
 * session and expiry, and no failed request (refresh-checks.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js'
import { benchGatewayClient, reserveGatewayAddress, startBenchGateway, type BenchGateway } from './bench-gateway.js'
import { BROWSER_HEADERS, gcSecondsFromMetrics, type Contender } from './contenders.js'
import { startIdpChild, type IdpChild } from './idp-child.js'
import { ORDERS_BODY } from './protocol.js'
import { refreshRunCheck, summariseRefresh, type RefreshRunCheck, type RefreshSummary } from './refresh-checks.js'
import { redisCommandCounter, type RedisCommandCounter } from './redis-commands.js'
import { ACTIVE_AT_START, arrivalsPerRun, arrivalWindowSeconds, SessionRing, type TakenSessions } from './refresh-plan.js'
import { signInThroughGateway } from './sign-in.js'

export interface RefreshContenderOptions {
  stubUrl: string
  logLevel: string
  sessions: number
  accessTokenTtlSeconds: number
  refreshesPerSecond: number
  log: (line: string) => void
}

export interface RefreshContender extends Contender {
  summary (): RefreshSummary
}

/** Sign-ins in flight at once while the sessions are made. */
const SET_UP_CONCURRENCY = 8
/** Past a token's life: the gateway counts it from receipt, a little after the IdP issued it. */
const EXPIRY_MARGIN_MS = 500

async function signInMany (gatewayUrl: string, count: number): Promise<string[]> {
  const cookies: string[] = []
  let inFlight = 0
  const lane = async () => {
    while (cookies.length + inFlight < count) {
      inFlight += 1
      try {
        cookies.push(await signInThroughGateway(gatewayUrl))
      } finally {
        inFlight -= 1
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(SET_UP_CONCURRENCY, count) }, lane))
  return cookies
}

/** One signed-in API call; false unless it answers 200 with the stub's body. */
async function serves (url: string, cookie: string): Promise<boolean> {
  try {
    const response = await fetch(url, { headers: { ...BROWSER_HEADERS, cookie } })
    return response.status === 200 && await response.text() === ORDERS_BODY
  } catch {
    return false
  }
}

export async function refreshContender (options: RefreshContenderOptions): Promise<RefreshContender> {
  let redis: RedisServer | undefined
  let idp: IdpChild | undefined
  let gateway: BenchGateway | undefined
  let commandCounter: RedisCommandCounter | undefined
  const close = async () => {
    commandCounter?.close()
    await gateway?.stop()
    await idp?.stop()
    await redis?.close()
  }
  try {
    redis = await startRedisServer()
    const address = await reserveGatewayAddress()
    idp = await startIdpChild({
      accessTokenTtl: options.accessTokenTtlSeconds,
      apiAudience: options.stubUrl,
      clients: [benchGatewayClient(address)],
    })
    gateway = await startBenchGateway({
      address,
      issuer: idp.issuer,
      redisUrl: redis.url,
      stubUrl: options.stubUrl,
      logLevel: options.logLevel,
      env: { TOKEN_REFRESH_SKEW: '0' },
    })
    const started = performance.now()
    // One more than the ring: the probe session that assertServes uses, so no session of the ring is touched outside a run.
    const [probe, ...cookies] = await signInMany(gateway.url, options.sessions + 1)
    options.log(`(i): ${cookies.length + 1} sessions signed in through the gateway in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    const ring = new SessionRing(cookies, options.accessTokenTtlSeconds * 1000 + EXPIRY_MARGIN_MS, Date.now())
    const url = `${gateway.url}/api/orders`
    const checks: RefreshRunCheck[] = []
    let current: { taken: TakenSessions, callsBefore: number, preRunFailures: number } | undefined
    const refreshCalls = async () => (await (idp as IdpChild).stats()).tokenCalls.refreshToken
    const { metricsUrl } = gateway
    const counter = commandCounter = redisCommandCounter(redis.url)

    return {
      key: 'i',
      name: `(i) this gateway, tokens expiring: ${options.sessions} sessions, ${options.accessTokenTtlSeconds} s tokens, ${options.refreshesPerSecond} refreshes/s`,
      url,
      headers: { ...BROWSER_HEADERS, cookie: probe as string },
      gcSeconds: () => gcSecondsFromMetrics(metricsUrl),
      // Counted as for the other gateways: PING and SCAN left out.
      redisCommands: () => counter.read(),
      async beforeRun (seconds) {
        const arriving = arrivalsPerRun(seconds, options.refreshesPerSecond)
        const taken = ring.take(ACTIVE_AT_START + arriving)
        const wait = taken.readyAt - Date.now()
        if (wait > 0) {
          options.log(`(i): waiting ${(wait / 1000).toFixed(1)} s until the next sessions' tokens have expired (raise BENCH_REFRESH_SESSIONS)`)
          await sleep(wait)
        }
        const callsBefore = await refreshCalls()
        const active = taken.cookies.slice(0, ACTIVE_AT_START)
        let preRunFailures = 0
        for (const cookie of active) if (!await serves(url, cookie)) preRunFailures += 1
        current = { taken, callsBefore, preRunFailures }
        return {
          rotation: {
            active,
            arriving: taken.cookies.slice(ACTIVE_AT_START),
            perSecond: options.refreshesPerSecond,
            untilSeconds: arrivalWindowSeconds(seconds),
          },
        }
      },
      async afterRun (result, seconds) {
        if (!current) throw new Error('(i): a run ended that beforeRun did not start')
        const { taken, callsBefore, preRunFailures } = current
        current = undefined
        ring.release(taken.indexes, Date.now())
        const check = refreshRunCheck({
          seconds,
          warmup: checks.length === 0,
          refreshedBefore: ACTIVE_AT_START,
          preRunFailures,
          tokenCalls: await refreshCalls() - callsBefore,
          result,
        })
        checks.push(check)
        if (!check.pass) {
          options.log(`(i) ⚠ ${check.tokenCalls} token-endpoint calls for ${check.expiries} session expiries, ` +
            `${check.errors} failed requests (${preRunFailures} of them before the run)`)
        }
      },
      summary: () => summariseRefresh({
        sessions: options.sessions,
        accessTokenTtlSeconds: options.accessTokenTtlSeconds,
        refreshesPerSecond: options.refreshesPerSecond,
        activeAtStart: ACTIVE_AT_START,
      }, checks),
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
