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
})
