/**
 * Command-line flags and BENCH_* variables, validated once. Every duration is
 * in seconds. `--quick` is a smoke run: short rounds, one storm, results
 * written beside (not over) the full run's. `--control` measures the bench
 * itself: (d) is a second bare proxy, so every difference from (b) is noise.
 * `--sessions` sets N for the many-users contenders; with more than one N
 * (`--many-sizes`: 50 000 and 500 000), only (b), (f) and (g) are measured, at
 * each N in turn, for the session cache's numbers.
 */
import { sessionsPerRun } from './refresh-plan.js'

export interface BenchSettings {
  quick: boolean
  /** (d) is a second bare proxy instead of the gateway: an A/A run showing the machine's noise. */
  control: boolean
  storm: boolean
  profile: boolean
  connections: number
  warmupSeconds: number
  durationSeconds: number
  /**
   * Every contender runs each round's duration in slices of this many seconds,
   * one slice of each in turn, so all meet the same machine state (schedule.ts).
   */
  sliceSeconds: number
  rounds: number
  /** Pause between two load runs, so sockets of the last one are gone. */
  pauseMs: number
  stormRequests: number
  /** Requests of the low-noise probe after each storm. */
  stormProbeRequests: number
  stormRounds: number
  stormTokenTtlSeconds: number
  /** LOG_LEVEL of the gateway contender. */
  gatewayLogLevel: string
  /** File name (without extension) under bench/results. */
  resultsName: string
  /**
   * Sessions of the many-users contenders (f) and (g). More than one: only (b), (f) and (g) are
   * measured, once at each number, in this order.
   */
  sessions: number[]
  /** Contender (i) in the table: the gateway refreshing its sessions' expiring tokens. */
  refresh: boolean
  /** Sessions (i) signs in at set-up and takes turns with. */
  refreshSessions: number
  /** Access-token lifetime at (i)'s IdP: longer than any one load run, so no session expires twice in one. */
  refreshTokenTtlSeconds: number
  /** Sessions with an expired token that arrive, so refreshes, per second of an (i) run. */
  refreshesPerSecond: number
  /** The login contenders (l) and (m), after the table. */
  login: boolean
  /** Sign-ins in flight at once in the login driver. */
  loginConcurrency: number
  /** Rounds of (l) and (m), each BENCH_DURATION long in BENCH_SLICE slices. */
  loginRounds: number
}

/** N for the many-users contenders, well above what the default session cache holds (64 MiB: about 24 600 sessions). */
export const DEFAULT_SESSIONS = 50_000
/** `--many-sizes`: the two sizes, for the cache's hit rate and memory per session at each. */
export const MANY_SIZES: readonly number[] = [50_000, 500_000]

export const USAGE = `usage: npm run bench -- [--quick] [--no-storm] [--no-refresh] [--no-login] [--profile] [--control]
                        [--sessions N[,N…] | --many-sizes]

  --quick      smoke run: 1 s warm-up, 1 round of 2 s, one storm; writes bench/results/quick.{json,md}
  --control    A/A run: (d) is a second bare proxy instead of the gateway, no (e)–(i), sign-ins or storm; the ratios of
               (d) to (b) are then the machine's noise. Writes bench/results/control.{json,md}
  --no-storm   skip the refresh-storm scenario
  --no-refresh skip contender (i), the gateway refreshing many sessions' expiring tokens
  --no-login   skip the login contenders (l) and (m) after the table
  --profile    afterwards, run the gateway once more under --cpu-prof and list its top self-time functions
  --sessions N sessions of the many-users contenders (f) and (g) (default 50000; also BENCH_SESSIONS).
               Several, comma-separated: only (b), (f) and (g), measured at each N in turn (no (i),
               no sign-ins, no storm);
               writes bench/results/many-sizes.{json,md}
  --many-sizes the same as --sessions 50000,500000 (about 9 minutes)

environment (seconds unless noted):
  BENCH_DURATION (6)  BENCH_SLICE (2, must divide BENCH_DURATION)  BENCH_ROUNDS (7)
  BENCH_WARMUP (3)  BENCH_CONNECTIONS (50)
  BENCH_STORM_REQUESTS (200)  BENCH_STORM_PROBE (10)  BENCH_STORM_ROUNDS (3)  BENCH_STORM_TTL (3)
  BENCH_GATEWAY_LOG_LEVEL (warn)  BENCH_SESSIONS (50000)
  BENCH_REFRESH_SESSIONS (200)  BENCH_REFRESH_TTL (5, longer than BENCH_SLICE and BENCH_WARMUP)
  BENCH_REFRESH_RATE (10 per second)  BENCH_LOGIN_CONCURRENCY (8)  BENCH_LOGIN_ROUNDS (5)`

export class SettingsError extends Error {
  override name = 'SettingsError'
}

const FLAGS = ['--quick', '--no-storm', '--profile', '--control', '--many-sizes']
/** The flags of the refresh and login contenders. */
const CONTENDER_FLAGS = ['--no-refresh', '--no-login']

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function positiveInteger (env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new SettingsError(`${name} must be a positive whole number, got "${raw}"`)
  return Number(raw)
}

/** The numbers of `--sessions N[,N…]` or `BENCH_SESSIONS`, each a positive whole number. */
function sessionCounts (name: string, raw: string): number[] {
  const counts = raw.split(',').map(part => part.trim())
  if (counts.some(part => !/^\d+$/.test(part) || Number(part) < 1)) {
    throw new SettingsError(`${name} must be positive whole numbers, comma-separated, got "${raw}"`)
  }
  return counts.map(Number)
}

/** Takes `--sessions N` or `--sessions=N` out of the arguments; the rest are flags. */
function takeSessions (argv: readonly string[]): { rest: string[], sessions?: string } {
  const rest: string[] = []
  let sessions: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--sessions') {
      sessions = argv[++i]
      if (sessions === undefined) throw new SettingsError('--sessions needs a number')
    } else if (arg.startsWith('--sessions=')) {
      sessions = arg.slice('--sessions='.length)
    } else {
      rest.push(arg)
    }
  }
  return sessions === undefined ? { rest } : { rest, sessions }
}

export function parseSettings (given: readonly string[], env: Record<string, string | undefined>): BenchSettings {
  const { rest: argv, sessions: sessionsArgument } = takeSessions(given)
  const flags = new Set<string>()
  for (const arg of argv) {
    if (![...FLAGS, ...CONTENDER_FLAGS].includes(arg)) throw new SettingsError(`unknown argument ${arg}\n${USAGE}`)
    flags.add(arg)
  }
  const quick = flags.has('--quick')
  const control = flags.has('--control')
  if (control && flags.has('--profile')) throw new SettingsError('--profile profiles the gateway, which a --control run does not start')
  if (flags.has('--many-sizes') && sessionsArgument !== undefined) throw new SettingsError('--many-sizes is --sessions 50000,500000: give one or the other')
  const sessions = flags.has('--many-sizes')
    ? [...MANY_SIZES]
    : sessionsArgument !== undefined
      ? sessionCounts('--sessions', sessionsArgument)
      : env.BENCH_SESSIONS ? sessionCounts('BENCH_SESSIONS', env.BENCH_SESSIONS) : [DEFAULT_SESSIONS]
  const manySizes = sessions.length > 1
  if (control && manySizes) throw new SettingsError('several --sessions measure the gateway, which a --control run does not start')
  const gatewayLogLevel = env.BENCH_GATEWAY_LOG_LEVEL || 'warn'
  if (!LOG_LEVELS.has(gatewayLogLevel)) throw new SettingsError(`BENCH_GATEWAY_LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}`)
  const durationSeconds = positiveInteger(env, 'BENCH_DURATION', quick ? 2 : 6)
  const sliceSeconds = positiveInteger(env, 'BENCH_SLICE', 2)
  if (durationSeconds % sliceSeconds !== 0) {
    throw new SettingsError(`BENCH_SLICE (${sliceSeconds}) must divide BENCH_DURATION (${durationSeconds}) into whole slices`)
  }
  const warmupSeconds = positiveInteger(env, 'BENCH_WARMUP', quick ? 1 : 3)
  return {
    quick,
    control,
    storm: !flags.has('--no-storm') && !control && !manySizes,
    profile: flags.has('--profile'),
    connections: positiveInteger(env, 'BENCH_CONNECTIONS', 50),
    warmupSeconds,
    durationSeconds,
    sliceSeconds,
    // 7: nine contenders in the table at 3 slices a round make 189 slices, about 8 of the full run's 11 minutes.
    rounds: positiveInteger(env, 'BENCH_ROUNDS', quick ? 1 : 7),
    pauseMs: quick ? 200 : 500,
    stormRequests: positiveInteger(env, 'BENCH_STORM_REQUESTS', 200),
    stormProbeRequests: positiveInteger(env, 'BENCH_STORM_PROBE', 10),
    stormRounds: positiveInteger(env, 'BENCH_STORM_ROUNDS', quick ? 1 : 3),
    stormTokenTtlSeconds: positiveInteger(env, 'BENCH_STORM_TTL', 3),
    gatewayLogLevel,
    // A quick run never overwrites a full one, a control run's included.
    resultsName: quick ? 'quick' : control ? 'control' : manySizes ? 'many-sizes' : 'latest',
    sessions,
    ...refreshSettings(flags, env, { quick, control, manySizes, longestRunSeconds: Math.max(sliceSeconds, warmupSeconds) }),
    ...loginSettings(flags, env, { quick, control, manySizes }),
  }
}

interface RunShape {
  quick: boolean
  /** An A/A run measures the bench itself: no gateway, so no refresh or login contenders. */
  control: boolean
  /** Several numbers of sessions: only (b), (f) and (g) are measured, so no refresh or login contenders either. */
  manySizes: boolean
}

function refreshSettings (flags: Set<string>, env: Record<string, string | undefined>, run: RunShape & { longestRunSeconds: number }) {
  const refreshesPerSecond = positiveInteger(env, 'BENCH_REFRESH_RATE', 10)
  // A session is refreshed once when it comes into a run; it must not expire again before the run ends.
  const refreshTokenTtlSeconds = positiveInteger(env, 'BENCH_REFRESH_TTL', Math.max(5, run.longestRunSeconds + 2))
  if (refreshTokenTtlSeconds <= run.longestRunSeconds) {
    throw new SettingsError(`BENCH_REFRESH_TTL (${refreshTokenTtlSeconds}) must be longer than every load run (BENCH_SLICE and BENCH_WARMUP: ${run.longestRunSeconds} s)`)
  }
  // Two runs of (i) can follow each other (…e i, i e…): each takes fresh sessions, whose tokens expired meanwhile.
  const least = 2 * sessionsPerRun(run.longestRunSeconds, refreshesPerSecond)
  const given = env.BENCH_REFRESH_SESSIONS
  const refreshSessions = positiveInteger(env, 'BENCH_REFRESH_SESSIONS', Math.max(least, run.quick ? 100 : 200))
  if (given !== undefined && given !== '' && refreshSessions < least) {
    throw new SettingsError(`BENCH_REFRESH_SESSIONS (${refreshSessions}) must be at least ${least} at BENCH_REFRESH_RATE ${refreshesPerSecond}: two runs' worth`)
  }
  return { refresh: !flags.has('--no-refresh') && !run.control && !run.manySizes, refreshSessions, refreshTokenTtlSeconds, refreshesPerSecond }
}

function loginSettings (flags: Set<string>, env: Record<string, string | undefined>, run: RunShape) {
  return {
    login: !flags.has('--no-login') && !run.control && !run.manySizes,
    loginConcurrency: positiveInteger(env, 'BENCH_LOGIN_CONCURRENCY', 8),
    loginRounds: positiveInteger(env, 'BENCH_LOGIN_ROUNDS', run.quick ? 1 : 5),
  }
}
