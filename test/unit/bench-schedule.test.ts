import { describe, expect, it } from 'vitest'
import { roundRuns } from '../../bench/schedule.js'
import type { ContenderKey } from '../../bench/contenders.js'

const contenders = (['a', 'b', 'c', 'd'] as ContenderKey[]).map(key => ({ key }))
/** A round as its slices' keys, groups apart, e.g. "abdc cdba abdc". */
const order = (round: number, duration = 6, slice = 2, given = contenders) => {
  const keys = roundRuns(given, round, duration, slice).map(run => run.contender.key)
  const size = given.length
  return Array.from({ length: keys.length / size }, (_, i) => keys.slice(i * size, (i + 1) * size).join('')).join(' ')
}

describe('the benchmark schedule', () => {
  it('gives every contender a round\'s duration in each round, in slices', () => {
    for (let round = 0; round < 4; round++) {
      const seconds = new Map<ContenderKey, number>()
      for (const run of roundRuns(contenders, round, 6, 2)) {
        expect(run.seconds).toBe(2)
        seconds.set(run.contender.key, (seconds.get(run.contender.key) ?? 0) + run.seconds)
      }
      expect(Object.fromEntries(seconds)).toEqual({ a: 6, b: 6, c: 6, d: 6 })
    }
  })

  it('runs one slice of each per group, flipping the order from group to group across rounds', () => {
    expect(order(0)).toBe('abdc cdba abdc')
    expect(order(1)).toBe('cdba abdc cdba')
    expect(order(0, 4, 2)).toBe('abdc cdba')
    expect(order(1, 4, 2)).toBe('abdc cdba')
  })

  it('keeps the gateway beside the bare proxy and beside the express stack in every group', () => {
    for (let round = 0; round < 4; round++) {
      for (const group of order(round).split(' ')) {
        expect(group).toMatch(/bd|db/)
        expect(group).toMatch(/dc|cd/)
      }
    }
  })

  it('runs whole rounds when a slice is the whole round', () => {
    expect(order(0, 6, 6)).toBe('abdc')
    expect(order(1, 6, 6)).toBe('cdba')
  })

  it('orders a run without the gateway the same way', () => {
    expect(order(0, 6, 2, contenders.filter(c => c.key !== 'd'))).toBe('abc cba abc')
  })

  it('puts the narrowed DPoP route (e) at the end of each group, keeping the gateway beside the bare proxy and the express stack', () => {
    const withNarrowed = [...contenders, { key: 'e' as ContenderKey }]
    expect(order(0, 6, 2, withNarrowed)).toBe('abdce ecdba abdce')
  })

  it('puts the many-users and cold contenders on the bare proxy\'s other side, (f) beside it, keeping (d) between (b) and (c)', () => {
    const all = (['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] as ContenderKey[]).map(key => ({ key }))
    expect(order(0, 6, 2, all)).toBe('ahgfbdce ecdbfgha ahgfbdce')
    for (const group of order(1, 6, 2, all).split(' ')) {
      expect(group).toMatch(/fb|bf/)
      expect(group).toMatch(/bd|db/)
      expect(group).toMatch(/dc|cd/)
    }
    const manySizes = all.filter(c => ['b', 'f', 'g'].includes(c.key))
    expect(order(0, 4, 2, manySizes)).toBe('gfb bfg')
  })

  it('puts the refresh contender (i) after (e), keeping the gateway beside the bare proxy and the express stack', () => {
    const withRefresh = [...contenders, { key: 'e' as ContenderKey }, { key: 'i' as ContenderKey }]
    expect(order(0, 6, 2, withRefresh)).toBe('abdcei iecdba abdcei')
  })

  it('runs every contender of the table in one order, (d) between (b) and (c), reversed every other group', () => {
    const all = (['i', 'h', 'g', 'f', 'e', 'd', 'c', 'b', 'a'] as ContenderKey[]).map(key => ({ key }))
    expect(order(0, 6, 2, all)).toBe('ahgfbdcei iecdbfgha ahgfbdcei')
    for (const group of order(1, 6, 2, all).split(' ')) {
      expect(group).toMatch(/fbd|dbf/)
      expect(group).toMatch(/bdc|cdb/)
    }
  })

  it('alternates the two sign-in contenders in slices of their own', () => {
    const logins = (['m', 'l'] as ContenderKey[]).map(key => ({ key }))
    expect(order(0, 6, 2, logins)).toBe('lm ml lm')
    expect(order(1, 6, 2, logins)).toBe('ml lm ml')
  })
})
