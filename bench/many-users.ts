/**
 * The contenders that look like production traffic, each a gateway process of
 * its own beside (d)'s, on the same Redis, IdP, secrets and policy:
 *
 *  (f) many users, uniform: N sessions (one user each), every request the
 *      cookie of one picked uniformly at random;
 *  (g) many users, Zipf: the same N sessions, picked with a Zipf-like skew
 *      (cookie-mix.ts: s = 1);
 *  (h) cold: the gateway with its session cache off (SESSION_CACHE_SIZE=0),
 *      reading alice's session (the one user of (d)) from Redis on every
 *      request, as the issue's baseline did.
 *
 * (f) and (g) have a process each, so each cache holds what its own mix
 * leaves in it and the hit rates do not bleed into each other.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../gateway/config.js'
import { freePort } from '../test/helpers/free-port.js'
import { ZIPF_EXPONENT, type CookieDistribution } from './cookie-mix.js'
import { assertServes, gcSecondsFromMetrics, sessionCacheFromMetrics, type Contender, type ContenderKey, type GatewayContender } from './contenders.js'
import { startChild, type BenchChild } from './processes.js'
import { redisCommandCounter } from './redis-commands.js'
import { integer } from './report-format.js'
import { createSessionFactory } from './session-factory.js'

export interface ManyUsersOptions {
  gateway: GatewayContender
  redisUrl: string
  /** N for (f) and (g). */
  sessions: number
  /** Start (h) as well. */
  cold: boolean
  log: (line: string) => void
}

export interface ManyUsers {
  /** (f), (g) and, when asked for, (h). */
  readonly contenders: readonly Contender[]
  /** Makes sessions up to `count` in all and restarts (f) and (g), so their caches start empty. */
  resize (count: number): Promise<void>
  close (): Promise<void>
}

/** A gateway process started from (d)'s environment, on ports of its own. */
interface GatewayProcess {
  readonly url: string
  readonly metricsUrl: string
  restart (): Promise<void>
  stop (): Promise<void>
}

async function startGatewayProcess (base: Readonly<Record<string, string>>, extra: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort()
  const adminPort = await freePort()
  const url = `http://127.0.0.1:${port}`
  const env = { ...base, PUBLIC_URL: url, PORT: String(port), ADMIN_PORT: String(adminPort), ...extra }
  let child: BenchChild | undefined = await startChild('contender-gateway', { env })
  return {
    url,
    metricsUrl: `http://127.0.0.1:${adminPort}/metrics`,
    async restart () {
      await child?.stop()
      child = undefined
      child = await startChild('contender-gateway', { env })
    },
    stop: async () => { await child?.stop() },
  }
}

/**
 * (h) is only "cold" if every request reads its session from Redis: should SESSION_CACHE_SIZE
 * ever stop turning the cache off, this says so rather than measuring a hot path under that name.
 */
async function assertReadsRedisEachTime (contender: Contender): Promise<void> {
  const requests = 3
  const before = await contender.redisCommands?.()
  for (let i = 0; i < requests; i++) await assertServes(contender)
  const after = await contender.redisCommands?.()
  if (before === undefined || after === undefined || after - before < requests) {
    throw new Error(`${contender.name}: ${requests} requests did not each read Redis; is its session cache really off?`)
  }
}

export async function startManyUsers (options: ManyUsersOptions): Promise<ManyUsers> {
  const { gateway, log } = options
  const dir = await mkdtemp(join(tmpdir(), 'bff-bench-sessions-'))
  const commandCounter = redisCommandCounter(options.redisUrl)
  const factory = await createSessionFactory(loadConfig({ ...gateway.env }), gateway.sessionCookie)
  const processes: GatewayProcess[] = []
  const contenders: Contender[] = []
  const close = async () => {
    await Promise.allSettled(processes.map(p => p.stop()))
    commandCounter.close()
    await factory.close()
    await rm(dir, { recursive: true, force: true })
  }

  /** Writes the first `sessions` cookies to a file of its own (the load generator keeps the last file it read). */
  async function cookieFile (sessions: number): Promise<{ file: string, first: string, last: string }> {
    const started = performance.now()
    const values = await factory.grow(sessions)
    log(`${integer.format(values.length)} sessions in Redis, ${integer.format(sessions)} of them for (f) and (g) (made in ${((performance.now() - started) / 1000).toFixed(1)} s)`)
    const lines = values.slice(0, sessions).map(value => `${factory.cookieName}=${value}`)
    const file = join(dir, `cookies-${sessions}.txt`)
    await writeFile(file, `${lines.join('\n')}\n`)
    return { file, first: lines[0] as string, last: lines[lines.length - 1] as string }
  }

  function contenderOf (key: ContenderKey, name: string, instance: GatewayProcess, headers: Record<string, string>): Contender {
    return {
      key,
      name,
      url: `${instance.url}/api/orders`,
      headers,
      gcSeconds: () => gcSecondsFromMetrics(instance.metricsUrl),
      redisCommands: () => commandCounter.read(),
      sessionCache: () => sessionCacheFromMetrics(instance.metricsUrl),
      close: () => instance.stop(),
    }
  }

  const many: Array<{ contender: Contender, instance: GatewayProcess, distribution: CookieDistribution }> = []
  const manyName = (distribution: CookieDistribution, sessions: number) => distribution === 'uniform'
    ? `(f) this gateway, ${integer.format(sessions)} users, uniform`
    : `(g) this gateway, ${integer.format(sessions)} users, Zipf s=${ZIPF_EXPONENT}`

  /** Points (f) and (g) at the first `sessions` sessions, checking one request each with the first and the last. */
  async function useSessions (sessions: number): Promise<void> {
    const { file, first, last } = await cookieFile(sessions)
    for (const { contender, distribution } of many) {
      contender.name = manyName(distribution, sessions)
      contender.cookies = { file, distribution, ...(distribution === 'zipf' ? { exponent: ZIPF_EXPONENT } : {}) }
      contender.headers = { ...contender.headers, cookie: last }
      await assertServes(contender)
      // The first cookie goes last: it stands in `headers` for anything that sends a single request.
      contender.headers = { ...contender.headers, cookie: first }
      await assertServes(contender)
    }
  }

  try {
    for (const [key, distribution] of [['f', 'uniform'], ['g', 'zipf']] as const) {
      const instance = await startGatewayProcess(gateway.env)
      processes.push(instance)
      const contender = contenderOf(key, manyName(distribution, options.sessions), instance, { ...gateway.headers })
      many.push({ contender, instance, distribution })
      contenders.push(contender)
    }
    await useSessions(options.sessions)
    if (options.cold) {
      const instance = await startGatewayProcess(gateway.env, { SESSION_CACHE_SIZE: '0' })
      processes.push(instance)
      const cold = contenderOf('h', '(h) this gateway, session cache off (one user)', instance, { ...gateway.headers })
      await assertReadsRedisEachTime(cold)
      contenders.push(cold)
    }
  } catch (error) {
    await close()
    throw error
  }

  return {
    contenders,
    async resize (sessions) {
      await Promise.all(many.map(m => m.instance.restart()))
      await useSessions(sessions)
    },
    close,
  }
}
