import { describe, expect, it } from 'vitest'
import { roundOrder } from '../../bench/schedule.js'
import type { ContenderKey } from '../../bench/contenders.js'

const contenders = (['a', 'b', 'c', 'd'] as ContenderKey[]).map(key => ({ key }))
const order = (round: number) => roundOrder(contenders, round).map(c => c.key).join('')

describe('the benchmark round order', () => {
  it('runs every contender once per round', () => {
    for (let round = 0; round < 8; round++) expect([...order(round)].sort().join('')).toBe('abcd')
  })

  it('keeps the bare proxy and the gateway back to back, alternating which goes first', () => {
    const pairs = Array.from({ length: 6 }, (_, round) => /bd|db/.exec(order(round))?.[0])
    expect(pairs).toEqual(['bd', 'db', 'bd', 'db', 'bd', 'db'])
  })

  it('rotates, so no contender always runs first', () => {
    expect(new Set(Array.from({ length: 3 }, (_, round) => order(round)[0])).size).toBe(3)
  })

  it('orders a run without one of the pair as it is given, rotated', () => {
    const three = contenders.filter(c => c.key !== 'd')
    expect(roundOrder(three, 0).map(c => c.key).join('')).toBe('acb')
    expect(roundOrder(three, 1).map(c => c.key).join('')).toBe('cba')
  })
})
