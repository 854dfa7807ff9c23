import { describe, expect, it } from 'vitest'
import { createPicker, zipfShareOfTop } from '../../bench/cookie-mix.js'

/** A seeded generator (mulberry32), so the counts below are the same on every run. */
function seeded (seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6D2B79F5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function counts (pick: () => number, size: number, draws: number): number[] {
  const seen = new Array<number>(size).fill(0)
  for (let i = 0; i < draws; i++) seen[pick()]! += 1
  return seen
}

describe('the many-users cookie mix', () => {
  it('picks every session about equally often in the uniform mix', () => {
    const seen = counts(createPicker(100, 'uniform', 1, seeded(1)), 100, 100_000)
    expect(Math.min(...seen)).toBeGreaterThan(850)
    expect(Math.max(...seen)).toBeLessThan(1150)
  })

  it('picks the session of rank k in proportion to 1 / k^s in the Zipf mix', () => {
    const draws = 200_000
    const seen = counts(createPicker(1000, 'zipf', 1, seeded(2)), 1000, draws)
    const harmonic = Array.from({ length: 1000 }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b)
    expect(seen[0]! / draws).toBeCloseTo(1 / harmonic, 2)
    expect(seen[1]! / seen[0]!).toBeCloseTo(0.5, 1)
    expect(seen[9]! / seen[0]!).toBeCloseTo(0.1, 1)
    const steeper = counts(createPicker(1000, 'zipf', 2, seeded(3)), 1000, draws)
    expect(steeper[1]! / steeper[0]!).toBeCloseTo(0.25, 1)
  })

  it('never picks outside the sessions, at the edges of the random numbers too', () => {
    for (const distribution of ['uniform', 'zipf'] as const) {
      expect(createPicker(7, distribution, 1, () => 0)()).toBe(0)
      expect(createPicker(7, distribution, 1, () => 0.9999999999)()).toBe(6)
      expect(createPicker(1, distribution, 1, Math.random)()).toBe(0)
    }
    expect(() => createPicker(0, 'uniform')).toThrow()
  })

  it('gives the most active fifth of 50 000 sessions 86 % of the requests with s = 1', () => {
    expect(zipfShareOfTop(10_000, 50_000)).toBeCloseTo(0.86, 2)
  })
})
