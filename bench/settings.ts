/**
 * Command-line flags and BENCH_* variables, validated once. Every duration is
 * in seconds. `--quick` is a smoke run: short rounds, one storm, results
 * written beside (not over) the full run's. `--control` measures the bench
 * itself: (d) is a second bare proxy, so every difference from (b) is noise.
 */

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
}

export const USAGE = `usage: npm run bench -- [--quick] [--no-storm] [--profile] [--control]

  --quick      smoke run: 1 s warm-up, 1 round of 2 s, one storm; writes bench/results/quick.{json,md}
  --control    A/A run: (d) is a second bare proxy instead of the gateway, no storm; the ratios of
               (d) to (b) are then the machine's noise. Writes bench/results/control.{json,md}
  --no-storm   skip the refresh-storm scenario
  --profile    afterwards, run the gateway once more under --cpu-prof and list its top self-time functions

environment (seconds unless noted):
  BENCH_DURATION (6)  BENCH_SLICE (2, must divide BENCH_DURATION)  BENCH_ROUNDS (9)
  BENCH_WARMUP (3)  BENCH_CONNECTIONS (50)
  BENCH_STORM_REQUESTS (200)  BENCH_STORM_PROBE (10)  BENCH_STORM_ROUNDS (3)  BENCH_STORM_TTL (3)
  BENCH_GATEWAY_LOG_LEVEL (warn)`

export class SettingsError extends Error {
  override name = 'SettingsError'
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function positiveInteger (env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new SettingsError(`${name} must be a positive whole number, got "${raw}"`)
  return Number(raw)
}

export function parseSettings (argv: readonly string[], env: Record<string, string | undefined>): BenchSettings {
  const flags = new Set<string>()
  for (const arg of argv) {
    if (!['--quick', '--no-storm', '--profile', '--control'].includes(arg)) throw new SettingsError(`unknown argument ${arg}\n${USAGE}`)
    flags.add(arg)
  }
  const quick = flags.has('--quick')
  const control = flags.has('--control')
  if (control && flags.has('--profile')) throw new SettingsError('--profile profiles the gateway, which a --control run does not start')
  const gatewayLogLevel = env.BENCH_GATEWAY_LOG_LEVEL || 'warn'
  if (!LOG_LEVELS.has(gatewayLogLevel)) throw new SettingsError(`BENCH_GATEWAY_LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}`)
  const durationSeconds = positiveInteger(env, 'BENCH_DURATION', quick ? 2 : 6)
  const sliceSeconds = positiveInteger(env, 'BENCH_SLICE', 2)
  if (durationSeconds % sliceSeconds !== 0) {
    throw new SettingsError(`BENCH_SLICE (${sliceSeconds}) must divide BENCH_DURATION (${durationSeconds}) into whole slices`)
  }
  return {
    quick,
    control,
    storm: !flags.has('--no-storm') && !control,
    profile: flags.has('--profile'),
    connections: positiveInteger(env, 'BENCH_CONNECTIONS', 50),
    warmupSeconds: positiveInteger(env, 'BENCH_WARMUP', quick ? 1 : 3),
    durationSeconds,
    sliceSeconds,
    rounds: positiveInteger(env, 'BENCH_ROUNDS', quick ? 1 : 9),
    pauseMs: quick ? 200 : 500,
    stormRequests: positiveInteger(env, 'BENCH_STORM_REQUESTS', 200),
    stormProbeRequests: positiveInteger(env, 'BENCH_STORM_PROBE', 10),
    stormRounds: positiveInteger(env, 'BENCH_STORM_ROUNDS', quick ? 1 : 3),
    stormTokenTtlSeconds: positiveInteger(env, 'BENCH_STORM_TTL', 3),
    gatewayLogLevel,
    // A quick run never overwrites a full one, a control run's included.
    resultsName: quick ? 'quick' : control ? 'control' : 'latest',
  }
}
