import { describe, expect, it } from 'vitest'
import { parseSettings, SettingsError } from '../../bench/settings.js'

describe('the benchmark settings', () => {
  it('runs 7 rounds of 6 s by default, the pair in 2 s slices', () => {
    const settings = parseSettings([], {})
    expect(settings).toMatchObject({ rounds: 7, durationSeconds: 6, sliceSeconds: 2, control: false, storm: true, resultsName: 'latest' })
    // Nine contenders in the table: 7 rounds keep the full run near 11 minutes; BENCH_ROUNDS gives more.
    expect(parseSettings([], { BENCH_ROUNDS: '9' }).rounds).toBe(9)
  })

  it('refuses a slice that does not divide the round into whole slices', () => {
    expect(() => parseSettings([], { BENCH_DURATION: '5', BENCH_SLICE: '2' })).toThrow(SettingsError)
    expect(parseSettings([], { BENCH_DURATION: '9', BENCH_SLICE: '3' }).sliceSeconds).toBe(3)
  })

  it('makes --control an A/A run of its own: no storm, its own results file, no profile', () => {
    expect(parseSettings(['--control'], {})).toMatchObject({ control: true, storm: false, resultsName: 'control' })
    expect(() => parseSettings(['--control', '--profile'], {})).toThrow(SettingsError)
    expect(parseSettings(['--control', '--quick'], {}).resultsName).toBe('quick')
  })

  it('refuses unknown arguments and malformed numbers', () => {
    expect(() => parseSettings(['--fast'], {})).toThrow(SettingsError)
    expect(() => parseSettings([], { BENCH_ROUNDS: '0' })).toThrow(SettingsError)
    expect(() => parseSettings([], { BENCH_SLICE: '1.5' })).toThrow(SettingsError)
  })

  it('gives the many-users contenders 50 000 sessions unless told otherwise', () => {
    expect(parseSettings([], {}).sessions).toEqual([50_000])
    expect(parseSettings(['--sessions', '20000'], {}).sessions).toEqual([20_000])
    expect(parseSettings(['--quick', '--sessions=3000', '--no-storm'], {})).toMatchObject({ sessions: [3000], quick: true, storm: false })
    expect(parseSettings([], { BENCH_SESSIONS: '70000' }).sessions).toEqual([70_000])
    expect(parseSettings(['--sessions', '1000'], { BENCH_SESSIONS: '70000' }).sessions).toEqual([1000])
  })

  it('measures the cache at each of several numbers of sessions in a run of its own, without the storm', () => {
    expect(parseSettings(['--many-sizes'], {})).toMatchObject({ sessions: [50_000, 500_000], storm: false, resultsName: 'many-sizes' })
    expect(parseSettings(['--sessions', '2000,20000'], {})).toMatchObject({ sessions: [2000, 20_000], resultsName: 'many-sizes' })
    expect(parseSettings(['--quick', '--many-sizes'], {}).resultsName).toBe('quick')
    expect(() => parseSettings(['--many-sizes', '--sessions', '5'], {})).toThrow(SettingsError)
    expect(() => parseSettings(['--control', '--many-sizes'], {})).toThrow(SettingsError)
  })

  it('refuses a number of sessions that is not a positive whole number', () => {
    expect(() => parseSettings(['--sessions'], {})).toThrow(SettingsError)
    expect(() => parseSettings(['--sessions', '0'], {})).toThrow(SettingsError)
    expect(() => parseSettings(['--sessions', '5e4'], {})).toThrow(SettingsError)
    expect(() => parseSettings(['--sessions=1000,'], {})).toThrow(SettingsError)
    expect(() => parseSettings([], { BENCH_SESSIONS: 'many' })).toThrow(SettingsError)
  })

  it('runs the refresh contender (i) and the sign-ins (l, m) by default, each with a flag to skip it', () => {
    expect(parseSettings([], {})).toMatchObject({ refresh: true, login: true, refreshSessions: 200, refreshTokenTtlSeconds: 5, refreshesPerSecond: 10, loginConcurrency: 8, loginRounds: 5 })
    expect(parseSettings(['--quick'], {})).toMatchObject({ refresh: true, login: true, refreshSessions: 100, loginRounds: 1 })
    expect(parseSettings(['--no-refresh', '--no-login'], {})).toMatchObject({ refresh: false, login: false, storm: true })
    expect(parseSettings(['--control'], {})).toMatchObject({ refresh: false, login: false })
    // Several numbers of sessions measure only (b), (f) and (g).
    expect(parseSettings(['--many-sizes'], {})).toMatchObject({ refresh: false, login: false, storm: false })
    expect(parseSettings(['--sessions', '5000'], {})).toMatchObject({ refresh: true, login: true, sessions: [5000] })
  })

  it('keeps the refresh contender\'s tokens alive longer than any one load run, so no session expires twice in one', () => {
    expect(() => parseSettings([], { BENCH_REFRESH_TTL: '3' })).toThrow(/BENCH_REFRESH_TTL/)
    expect(parseSettings([], { BENCH_REFRESH_TTL: '4' }).refreshTokenTtlSeconds).toBe(4)
    expect(parseSettings([], { BENCH_DURATION: '6', BENCH_SLICE: '6' }).refreshTokenTtlSeconds).toBe(8)
  })

  it('asks for two runs\' worth of refresh sessions at the least', () => {
    // A 3 s warm-up at 10 per second: 10 active + 25 arriving, twice.
    expect(() => parseSettings([], { BENCH_REFRESH_SESSIONS: '69' })).toThrow(/at least 70/)
    expect(parseSettings([], { BENCH_REFRESH_SESSIONS: '70' }).refreshSessions).toBe(70)
    expect(parseSettings([], { BENCH_REFRESH_RATE: '100' }).refreshSessions).toBe(2 * (10 + 250))
  })
})
