/**
 * `npm run bench`: the gateway against what it is measured by, side by side in
 * one run, then the refresh storm. See bench/README.md and `--help`.
 *
 *  (a) the upstream stub called directly
 *  (b) a bare @fastify/http-proxy adding a static token
 *  (c) express + express-session/connect-redis + http-proxy-middleware
 *  (d) this gateway, signed in through the real IdP login flow
 *  (e) the same gateway and session, on a route with an audience-narrowed, DPoP-bound token
 *  (f) many users, uniform; (g) many users, Zipf; (h) the gateway with its cache off (many-users.ts)
 *  (i) the gateway refreshing many sessions' expiring tokens, steadily (refresh-contender.ts)
 *
 * and after the table, in slices of their own: (l) sign-ins through the gateway, (m) the same
 * sign-ins directly at the IdP (login-contenders.ts).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedisServer } from '../test/helpers/redis-server.js'
import { assertServes, bareProxy, DEFAULT_TOKEN_LENGTH, directUpstream, expressStack, gatewayContender, lastTokenLength, secondBareProxy, staticToken, type Contender, type ContenderKey, type GatewayContender } from './contenders.js'
import { summariseProfile, type ProfileSummary } from './cpu-profile.js'
import { createLoadClient, type LoadClient } from './load-client.js'
import { describeMachine, loadAverageNow } from './machine.js'
import { startManyUsers, type ManyUsers } from './many-users.js'
import { manyUsersTargets, sessionCacheTable } from './many-users-report.js'
import { startChild, type BenchChild } from './processes.js'
import { ORDERS_BODY, type LoadResult } from './protocol.js'
import { checkTargets, loginTargets, refreshTargets, gcLine, narrowedLine, redisLine, machineLine, markdown, profileSection, pairRatios, stormPerInstance, stormTable, summarise, targetLines, throughputTable, withRatios, type BenchReport } from './report.js'
import { roundRuns } from './schedule.js'
import { sessionCacheSlice, type SessionCacheCounters, type SessionCacheSlice } from './session-cache-stats.js'
import { parseSettings, SettingsError, USAGE, type BenchSettings } from './settings.js'
import { runRefreshStorm, type StormRound } from './storm.js'
import { runLoginBench } from './login-contenders.js'
import { refreshContender, type RefreshContender } from './refresh-contender.js'
import { loginCpuLine, loginFailures, loginPairRatios, loginTable, refreshLine } from './report-logins-refresh.js'

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

function log (line: string): void {
  process.stdout.write(`${line}\n`)
}

function describeRun (result: LoadResult): string {
  const problems = result.non2xx + result.errors + result.mismatches
  const codes = Object.entries(result.statusCodes).map(([code, count]) => `${code}×${count}`).join(' ')
  return `${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms` +
    (problems > 0 ? ` ⚠ non-2xx ${result.non2xx}, errors ${result.errors} (timeouts ${result.timeouts}), wrong bodies ${result.mismatches} [${codes}]` : '')
}

async function measure (settings: BenchSettings, load: LoadClient, contenders: Contender[]) {
  const run = async (contender: Contender, durationSeconds: number) => {
    const extra = await contender.beforeRun?.(durationSeconds)
    const result = await load.run({
      url: contender.url,
      headers: contender.headers,
      connections: settings.connections,
      durationSeconds,
      expectBody: ORDERS_BODY,
      cookies: contender.cookies,
      ...extra,
    })
    await contender.afterRun?.(result, durationSeconds)
    return result
  }

  const warmups = new Map<ContenderKey, LoadResult>()
  for (const contender of contenders) {
    const result = await run(contender, settings.warmupSeconds)
    log(`warm-up ${contender.name}: ${describeRun(result)}`)
    warmups.set(contender.key, result)
    await sleep(settings.pauseMs)
  }

  const runs = new Map<ContenderKey, LoadResult[]>(contenders.map(c => [c.key, []]))
  const gc = new Map<ContenderKey, number[]>(contenders.map(c => [c.key, []]))
  const redisCommands = new Map<ContenderKey, number[]>(contenders.map(c => [c.key, []]))
  const sessionCaches = new Map<ContenderKey, SessionCacheSlice[]>(contenders.map(c => [c.key, []]))
  for (let round = 0; round < settings.rounds; round++) {
    for (const { contender, seconds } of roundRuns(contenders, round, settings.durationSeconds, settings.sliceSeconds)) {
      const before = await readCounters(contender)
      const result = await run(contender, seconds)
      const after = await readCounters(contender)
      const per1000 = (from?: number, to?: number, scale = 1) =>
        from !== undefined && to !== undefined && result.total > 0 ? (to - from) * scale * 1000 / result.total : undefined
      const gcMs = per1000(before.gcSeconds, after.gcSeconds, 1000)
      const commands = per1000(before.redisCommands, after.redisCommands)
      if (gcMs !== undefined) gc.get(contender.key)?.push(gcMs)
      if (commands !== undefined) redisCommands.get(contender.key)?.push(commands)
      const cache = before.sessionCache && after.sessionCache ? sessionCacheSlice(before.sessionCache, after.sessionCache) : undefined
      if (cache) sessionCaches.get(contender.key)?.push(cache)
      const counters = [
        gcMs === undefined ? '' : `, GC ${gcMs.toFixed(1)} ms`,
        commands === undefined ? '' : `, ${commands.toFixed(1)} Redis commands`,
      ].join('')
      log(`round ${round + 1}/${settings.rounds} ${contender.name}, ${seconds} s: ${describeRun(result)}${counters ? `${counters} per 1000 requests` : ''}${describeCache(cache)}`)
      runs.get(contender.key)?.push(result)
      await sleep(settings.pauseMs)
    }
  }
  return withRatios(contenders.map(c => summarise(c.key, c.name, warmups.get(c.key) as LoadResult, runs.get(c.key) ?? [], {
    gcMsPer1000Requests: gc.get(c.key),
    redisCommandsPer1000Requests: redisCommands.get(c.key),
    sessionCache: sessionCaches.get(c.key),
  })))
}

async function readCounters (contender: Contender): Promise<{ gcSeconds?: number, redisCommands?: number, sessionCache?: SessionCacheCounters }> {
  return { gcSeconds: await contender.gcSeconds?.(), redisCommands: await contender.redisCommands?.(), sessionCache: await contender.sessionCache?.() }
}

/** A slice's cache hits and misses, when its gateway reports them. */
function describeCache (cache: SessionCacheSlice | undefined): string {
  if (cache?.hits === undefined || cache.misses === undefined) return ''
  return `; cache ${cache.hits} hits, ${cache.misses} misses, ${cache.entries ?? 'n/a'} sessions held`
}

/** The main thread's profile: tsx's loader thread writes one too (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile). */
async function mainThreadProfile (dir: string): Promise<string | undefined> {
  const main = (await readdir(dir)).find(f => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
  return main === undefined ? undefined : join(dir, main)
}

/** Runs the gateway once more under --cpu-prof (its numbers are not used: profiling slows it down). */
async function profileGateway (settings: BenchSettings, load: LoadClient, gateway: GatewayContender): Promise<ProfileSummary> {
  const dir = join(RESULTS_DIR, 'profile')
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  await gateway.restart(['--cpu-prof', '--cpu-prof-dir', dir])
  await assertServes(gateway)
  const request = { url: gateway.url, headers: gateway.headers, connections: settings.connections, expectBody: ORDERS_BODY }
  await load.run({ ...request, durationSeconds: settings.warmupSeconds })
  const result = await load.run({ ...request, durationSeconds: settings.durationSeconds })
  log(`profiled ${gateway.name}: ${describeRun(result)}`)
  // autocannon hangs up on requests still in flight; let the gateway finish them before it closes.
  await sleep(settings.pauseMs)
  await gateway.close()
  const file = await mainThreadProfile(dir)
  if (!file) throw new Error(`the profiled gateway wrote no .cpuprofile to ${dir}`)
  return summariseProfile(file)
}

async function main (): Promise<number> {
  if (process.argv.includes('--help')) {
    log(USAGE)
    return 0
  }
  let settings: BenchSettings
  try {
    settings = parseSettings(process.argv.slice(2), process.env)
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error
    process.stderr.write(`${error.message}\n`)
    return 2
  }
  const machine = describeMachine()
  log(`machine: ${machineLine(machine)}`)
  log(`load: ${settings.connections} connections, ${settings.warmupSeconds} s warm-up, ${settings.rounds} × ${settings.durationSeconds} s per contender, ` +
    `in ${settings.sliceSeconds} s slices, one of each contender in turn`)

  const report: BenchReport = {
    machine,
    settings: {
      quick: settings.quick,
      control: settings.control,
      connections: settings.connections,
      warmupSeconds: settings.warmupSeconds,
      durationSeconds: settings.durationSeconds,
      sliceSeconds: settings.sliceSeconds,
      rounds: settings.rounds,
      gatewayLogLevel: settings.gatewayLogLevel,
      sessions: settings.sessions,
    },
    contenders: [],
    targets: [],
  }

  const redis = await startRedisServer()
  let stub: BenchChild | undefined
  let generator: BenchChild | undefined
  const contenders: Contender[] = []
  let gateway: GatewayContender | undefined
  let many: ManyUsers | undefined
  // Several numbers of sessions: the cache's numbers at each, so only what they are compared with.
  const manySizes = settings.sessions.length > 1
  let refresh: RefreshContender | undefined
  try {
    stub = await startChild('upstream-stub')
    generator = await startChild('load-generator')
    const load = createLoadClient(generator)
    gateway = settings.control
      ? undefined
      : await gatewayContender({ stubUrl: stub.url, redisUrl: redis.url, logLevel: settings.gatewayLogLevel })
    if (gateway) await assertServes(gateway)
    const token = staticToken(gateway ? await lastTokenLength(stub.url) : DEFAULT_TOKEN_LENGTH)
    log(`(a), (b) and (c) send a bearer token of ${token.length} characters, ${gateway ? 'as long as the gateway\'s access token' : 'the usual length of the gateway\'s'}`)
    contenders.push(directUpstream(stub.url, token))
    contenders.push(await bareProxy(stub.url, token))
    contenders.push(await expressStack(stub.url, redis.url, token))
    contenders.push(gateway ?? await secondBareProxy(stub.url, token))
    if (gateway) contenders.push(gateway.narrowed())
    if (gateway) {
      many = await startManyUsers({ gateway, redisUrl: redis.url, sessions: settings.sessions[0] as number, cold: !manySizes, log })
      contenders.push(...many.contenders)
    }
    if (gateway && settings.refresh) {
      log(`(i): signing in ${settings.refreshSessions} sessions through a gateway whose IdP issues ${settings.refreshTokenTtlSeconds} s access tokens`)
      refresh = await refreshContender({
        stubUrl: stub.url,
        logLevel: settings.gatewayLogLevel,
        sessions: settings.refreshSessions,
        accessTokenTtlSeconds: settings.refreshTokenTtlSeconds,
        refreshesPerSecond: settings.refreshesPerSecond,
        log,
      })
      contenders.push(refresh)
    }
    for (const contender of contenders) await assertServes(contender)
    log('every contender serves GET /orders with a bearer token; measuring')
    const measured = manySizes ? contenders.filter(c => ['b', 'f', 'g'].includes(c.key)) : contenders

    report.contenders = await measure(settings, load, measured)
    report.machine.loadAverageAfterRounds = loadAverageNow()
    // A control run's (d) is not the gateway: there is nothing to check.
    report.targets = settings.control ? [] : [...checkTargets(report.contenders), ...manyUsersTargets(report.contenders)]
    if (refresh) {
      report.refresh = refresh.summary()
      report.targets.push(...refreshTargets(report.contenders, report.refresh))
    }
    log('')
    log(throughputTable(report.contenders))
    log('')
    log(pairRatios(report.contenders))
    for (const line of [narrowedLine(report.contenders), gcLine(report.contenders), redisLine(report.contenders), refreshLine(report.contenders, report.refresh)]) if (line) log(line)
    if (report.targets.length > 0) {
      log('')
      log(targetLines(report.targets))
    }
    for (const sessions of settings.sessions.slice(1)) {
      log('')
      log(`${sessions} sessions: (f) and (g) restarted with empty caches`)
      await many?.resize(sessions)
      const results = await measure(settings, load, measured)
      const size = { sessions, contenders: results, targets: manyUsersTargets(results) }
      report.moreSizes = [...report.moreSizes ?? [], size]
      log('')
      log(throughputTable(results))
      log('')
      log(targetLines(size.targets))
    }
    const cacheTable = sessionCacheTable([{ sessions: settings.sessions[0] as number, contenders: report.contenders }, ...report.moreSizes ?? []])
    if (cacheTable) {
      log('')
      log(cacheTable)
    }

    if (settings.profile && gateway) {
      report.profile = await profileGateway(settings, load, gateway)
      log('')
      log(profileSection(report.profile))
    }
  } finally {
    // The gateway starts first (the others' token length is measured on it): close it even if they never joined it.
    await Promise.allSettled([...contenders, ...gateway && !contenders.includes(gateway) ? [gateway] : []].map(c => c.close()))
    await many?.close()
    await generator?.stop()
    await stub?.stop()
    await redis.close()
  }

  if (settings.login) {
    log('')
    log(`sign-ins: (l) through the gateway and (m) directly at the IdP, ${settings.loginConcurrency} in flight, ` +
      `${settings.loginRounds} × ${settings.durationSeconds} s each in ${settings.sliceSeconds} s slices taking turns`)
    report.logins = await runLoginBench(settings, log)
    const targets = loginTargets(report.logins)
    report.targets.push(...targets)
    log('')
    log(loginTable(report.logins))
    log('')
    for (const line of [loginPairRatios(report.logins), loginCpuLine(report.logins), loginFailures(report.logins)]) if (line) log(line)
    if (targets.length > 0) log(targetLines(targets))
  }

  let storms: StormRound[] = []
  if (settings.storm) {
    log('')
    log(`refresh storm: 2 instances, ${settings.stormTokenTtlSeconds} s access tokens, ${settings.stormRequests} concurrent requests`)
    storms = await runRefreshStorm({
      requests: settings.stormRequests,
      probeRequests: settings.stormProbeRequests,
      rounds: settings.stormRounds,
      accessTokenTtlSeconds: settings.stormTokenTtlSeconds,
      log,
    })
    report.storm = storms
    log('')
    log(stormTable(storms))
    log('')
    log(stormPerInstance(storms))
  }

  await mkdir(RESULTS_DIR, { recursive: true })
  const base = join(RESULTS_DIR, settings.resultsName)
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`)
  await writeFile(`${base}.md`, markdown(report))
  log('')
  log(`wrote ${base}.json and ${base}.md`)

  const stormFailures = storms.filter(s => !s.pass).length
  if (stormFailures > 0) {
    log(`FAIL: ${stormFailures} storm round(s) made other than one token-endpoint call per expiry, or had errors`)
  }
  // As in the storm, a wrong number of refreshes or a failed request is a bug, not a slow run.
  if (report.refresh && !report.refresh.pass) {
    log('FAIL: contender (i) made other than one token-endpoint call per session and expiry, or had failed requests')
  }
  return stormFailures > 0 || (report.refresh && !report.refresh.pass) ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`)
    process.exit(1)
  }
)
