import { describe, expect, it } from 'vitest'
import { parseSettings, SettingsError } from '../../bench/settings.js'

describe('the benchmark settings', () => {
  it('runs 9 rounds of 6 s by default, the pair in 2 s slices', () => {
    const settings = parseSettings([], {})
    expect(settings).toMatchObject({ rounds: 9, durationSeconds: 6, sliceSeconds: 2, control: false, storm: true, resultsName: 'latest' })
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
})
