import { describe, expect, it } from 'vitest'
import { roundRuns } from '../../bench/schedule.js'
import type { ContenderKey } from '../../bench/contenders.js'

const contenders = (['a', 'b', 'c', 'd'] as ContenderKey[]).map(key => ({ key }))
/** The round as a string of keys, e.g. "acbddbbd". */
const order = (round: number, duration = 6, slice = 2) =>
  roundRuns(contenders, round, duration, slice).map(run => run.contender.key).join('')

describe('the benchmark schedule', () => {
  it('gives every contender a round\'s duration in each round', () => {
    for (let round = 0; round < 8; round++) {
      const seconds = new Map<ContenderKey, number>()
      for (const run of roundRuns(contenders, round, 6, 2)) seconds.set(run.contender.key, (seconds.get(run.contender.key) ?? 0) + run.seconds)
      expect(Object.fromEntries(seconds)).toEqual({ a: 6, b: 6, c: 6, d: 6 })
    }
  })

  it('runs the bare proxy and the gateway in alternating slices, one pair beside the other', () => {
    expect(/[bd]{6}/.exec(order(0))?.[0]).toBe('bddbbd')
    expect(/[bd]{6}/.exec(order(1))?.[0]).toBe('dbbddb')
    for (const run of roundRuns(contenders, 0, 6, 2).filter(r => 'bd'.includes(r.contender.key))) expect(run.seconds).toBe(2)
  })

  it('alternates which of the pair opens the round when a round is one slice', () => {
    const pairs = Array.from({ length: 6 }, (_, round) => /bd|db/.exec(order(round, 6, 6))?.[0])
    expect(pairs).toEqual(['bd', 'db', 'bd', 'db', 'bd', 'db'])
  })

  it('rotates, so no contender always runs first', () => {
    expect(new Set(Array.from({ length: 3 }, (_, round) => order(round)[0])).size).toBe(3)
  })

  it('runs a contender not in the pair in one piece, and a run without the pair as given, rotated', () => {
    const three = contenders.filter(c => c.key !== 'd')
    expect(roundRuns(three, 0, 6, 2).map(r => `${r.contender.key}${r.seconds}`).join(' ')).toBe('a6 c6 b2 b2 b2')
    expect(roundRuns(three, 1, 6, 2).map(r => r.contender.key).join('')).toBe('cbbba')
  })
})
