/**
 * The login contenders, measured after the table in the same alternating-slice
 * method, against each other only:
 *
 *  (l) full sign-ins through this gateway against the mock IdP, each proved by
 *      one API call with the new session (sign-in.ts);
 *  (m) the same sign-ins done directly at the IdP by a plain OIDC client: the
 *      IdP's own limit, which (l) cannot beat.
 *
 * The IdP, the gateway and the login driver each run in a process of their
 * own, with a fixed number of sign-ins in flight (BENCH_LOGIN_CONCURRENCY).
 * Slices of (l) and (m) take turns (l m, then m l, …), so both meet the same
 * machine.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js'
import { benchGatewayClient, reserveGatewayAddress, startBenchGateway, type BenchGateway } from './bench-gateway.js'
import type { ContenderKey } from './contenders.js'
import { startIdpChild, type IdpChild } from './idp-child.js'
import { median } from './percentiles.js'
import { processCpuMs } from './process-cpu.js'
import { ipcRequester } from './ipc-request.js'
import type { LoginJob, LoginResult, SignInTarget } from './login-protocol.js'
import { startChild, type BenchChild } from './processes.js'
import type { LoadResult } from './protocol.js'
import { summarise, type ContenderResult } from './report.js'
import { roundRuns } from './schedule.js'
import type { BenchSettings } from './settings.js'
import { DIRECT_CLIENT_ID, DIRECT_REDIRECT_URI } from './sign-in.js'

/** A test secret for a test client of a private IdP on loopback. */
const DIRECT_CLIENT_SECRET = 'bench-direct-client-secret-0123456789abcdef'

/** The processes a sign-in's CPU time is counted in (Redis and the stub are left out: a sliver of it). */
export type SignInProcess = 'driver' | 'idp' | 'gateway'

export interface LoginContenderResult extends Omit<ContenderResult, 'throughputVsBare' | 'p99VsBare'> {
  /** The first failed sign-in's message, when one failed. */
  firstError?: string
  /** CPU milliseconds per sign-in in each process, median of slices; absent where /proc cannot tell. */
  cpuMsPerSignIn?: Partial<Record<SignInProcess, number>>
}

export interface LoginReport {
  /** Sign-ins in flight at once, for either contender. */
  concurrency: number
  warmupSeconds: number
  durationSeconds: number
  sliceSeconds: number
  rounds: number
  /** (l) then (m). */
  contenders: LoginContenderResult[]
  /** Code exchanges the IdP received, over the whole phase (warm-ups and in-flight tails included). */
  codeExchanges: number
  /** Errors the IdP itself reported (server_error, handler crashes); 0 in a healthy run. */
  idpServerErrors: number
}

interface LoginContender {
  key: ContenderKey
  name: string
  target: SignInTarget
}

export type LoginSettings = Pick<BenchSettings, 'loginConcurrency' | 'loginRounds' | 'warmupSeconds' | 'durationSeconds' | 'sliceSeconds' | 'pauseMs' | 'gatewayLogLevel'>

function describeLogins (result: LoginResult): string {
  return `${result.requestsPerSecond.toFixed(1)} sign-ins/s, p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms` +
    (result.errors > 0 ? ` ⚠ ${result.errors} failed sign-in(s): ${result.firstError ?? ''}` : '')
}

export async function runLoginBench (settings: LoginSettings, log: (line: string) => void): Promise<LoginReport> {
  let redis: RedisServer | undefined
  let stub: BenchChild | undefined
  let idp: IdpChild | undefined
  let gateway: BenchGateway | undefined
  let driver: BenchChild | undefined
  try {
    redis = await startRedisServer()
    stub = await startChild('upstream-stub')
    const address = await reserveGatewayAddress()
    idp = await startIdpChild({
      apiAudience: stub.url,
      clients: [
        benchGatewayClient(address),
        { clientId: DIRECT_CLIENT_ID, clientSecret: DIRECT_CLIENT_SECRET, redirectUris: [DIRECT_REDIRECT_URI] },
      ],
    })
    gateway = await startBenchGateway({ address, issuer: idp.issuer, redisUrl: redis.url, stubUrl: stub.url, logLevel: settings.gatewayLogLevel })
    driver = await startChild('login-driver')
    const run = ipcRequester<Omit<LoginJob, 'id'>, LoginResult>(driver.process, 'the login driver', 'login-result')

    const contenders: LoginContender[] = [
      { key: 'l', name: '(l) sign-in through this gateway', target: { mode: 'gateway', gatewayUrl: gateway.url } },
      {
        key: 'm',
        name: '(m) sign-in directly at the IdP (openid-client)',
        target: {
          mode: 'direct',
          issuer: idp.issuer,
          clientId: DIRECT_CLIENT_ID,
          clientSecret: DIRECT_CLIENT_SECRET,
          redirectUri: DIRECT_REDIRECT_URI,
          resource: stub.url,
        },
      },
    ]
    const job = (contender: LoginContender, durationSeconds: number) =>
      run({ type: 'login', target: contender.target, concurrency: settings.loginConcurrency, durationSeconds })

    const warmups = new Map<ContenderKey, LoginResult>()
    for (const contender of contenders) {
      const result = await job(contender, settings.warmupSeconds)
      log(`warm-up ${contender.name}: ${describeLogins(result)}`)
      warmups.set(contender.key, result)
      await sleep(settings.pauseMs)
    }
    const runs = new Map<ContenderKey, LoginResult[]>(contenders.map(c => [c.key, []]))
    const pids: Record<SignInProcess, number | undefined> = { driver: driver.process.pid, idp: idp.pid, gateway: gateway.pid }
    const cpu = new Map<ContenderKey, Record<SignInProcess, number[]>>(contenders.map(c => [c.key, { driver: [], idp: [], gateway: [] }]))
    const cpuNow = async () => Object.fromEntries(await Promise.all(
      Object.entries(pids).map(async ([name, pid]) => [name, await processCpuMs(pid)] as const))) as Record<SignInProcess, number | undefined>
    for (let round = 0; round < settings.loginRounds; round++) {
      for (const { contender, seconds } of roundRuns(contenders, round, settings.durationSeconds, settings.sliceSeconds)) {
        const before = await cpuNow()
        const result = await job(contender, seconds)
        const after = await cpuNow()
        const perSignIn: string[] = []
        for (const name of Object.keys(pids) as SignInProcess[]) {
          const from = before[name]
          const to = after[name]
          // The gateway does nothing for (m): its idle CPU is no part of a direct sign-in.
          if (from === undefined || to === undefined || result.total === 0 || (name === 'gateway' && contender.key === 'm')) continue
          cpu.get(contender.key)?.[name].push((to - from) / result.total)
          perSignIn.push(`${name} ${((to - from) / result.total).toFixed(1)}`)
        }
        log(`login round ${round + 1}/${settings.loginRounds} ${contender.name}, ${seconds} s: ${describeLogins(result)}` +
          (perSignIn.length > 0 ? `; CPU ms per sign-in: ${perSignIn.join(', ')}` : ''))
        runs.get(contender.key)?.push(result)
        await sleep(settings.pauseMs)
      }
    }
    const stats = await idp.stats()
    return {
      concurrency: settings.loginConcurrency,
      warmupSeconds: settings.warmupSeconds,
      durationSeconds: settings.durationSeconds,
      sliceSeconds: settings.sliceSeconds,
      rounds: settings.loginRounds,
      contenders: contenders.map(c => {
        const measured = runs.get(c.key) ?? []
        const firstError = [warmups.get(c.key), ...measured].find(r => r?.firstError)?.firstError
        const cpuMsPerSignIn = Object.fromEntries(Object.entries(cpu.get(c.key) ?? {})
          .filter(([, values]) => values.length > 0)
          .map(([name, values]) => [name, median(values)]))
        return {
          ...summarise(c.key, c.name, asLoadResult(warmups.get(c.key) as LoginResult), measured.map(asLoadResult)),
          ...firstError === undefined ? {} : { firstError },
          ...Object.keys(cpuMsPerSignIn).length > 0 ? { cpuMsPerSignIn } : {},
        }
      }),
      codeExchanges: stats.tokenCalls.authorizationCode,
      idpServerErrors: stats.serverErrors,
    }
  } finally {
    await driver?.stop()
    await gateway?.stop()
    await idp?.stop()
    await stub?.stop()
    await redis?.close()
  }
}

/** The shape summarise() takes: a sign-in counts as one request. */
function asLoadResult ({ firstError: _firstError, ...result }: LoginResult): LoadResult {
  return { ...result, type: 'result' }
}
