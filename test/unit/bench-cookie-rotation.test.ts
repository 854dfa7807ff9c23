import { describe, expect, it } from 'vitest'
import { arrivalsDue, createCookieRotation } from '../../bench/cookie-rotation.js'
import type { CookieRotation } from '../../bench/protocol.js'

const rotation = (overrides: Partial<CookieRotation> = {}): CookieRotation => ({
  active: ['a1', 'a2'],
  arriving: ['n1', 'n2', 'n3', 'n4', 'n5'],
  perSecond: 2,
  untilSeconds: 1.5,
  ...overrides,
})

/** A picker on a clock the test moves, with a fixed "random" draw. */
function picker (given: CookieRotation, draw = 0) {
  const clock = { ms: 0 }
  const picks = createCookieRotation(given, () => clock.ms, () => draw)
  return { clock, picks }
}

describe('the refresh contender\'s cookie rotation', () => {
  it('brings the first arriving session in at once, then one per 1/perSecond, until untilSeconds', () => {
    const given = rotation()
    expect([0, 0.49, 0.5, 0.99, 1, 1.49].map(s => arrivalsDue(given, s))).toEqual([1, 1, 2, 2, 3, 3])
    // Due at 0, 0.5 and 1 s: none from 1.5 s on.
    expect([1.5, 10].map(s => arrivalsDue(given, s))).toEqual([3, 3])
    expect(arrivalsDue(rotation({ arriving: ['n1'] }), 5)).toBe(1)
  })

  it('sends a newcomer\'s first request next, so its refresh happens when it is due', () => {
    const { clock, picks } = picker(rotation())
    expect(picks.next()).toBe('n1')
    expect(picks.next()).toBe('a1')
    clock.ms = 500
    expect(picks.next()).toBe('n2')
    expect(picks.arrived).toBe(2)
  })

  it('spreads every other request uniformly over the sessions in use so far', () => {
    const given = rotation()
    const low = picker(given, 0)
    const high = picker(given, 0.999)
    low.picks.next()
    high.picks.next()
    // In use: a1, a2, n1.
    expect(low.picks.next()).toBe('a1')
    expect(high.picks.next()).toBe('n1')
  })

  it('brings no one in after untilSeconds, however long the run goes on', () => {
    const { clock, picks } = picker(rotation(), 0.5)
    for (const ms of [0, 500, 1000, 1500, 2000, 5000]) {
      clock.ms = ms
      for (let i = 0; i < 5; i++) picks.next()
    }
    expect(picks.arrived).toBe(3)
  })

  it('starts from an arriving session when none is active', () => {
    const { picks } = picker(rotation({ active: [] }))
    expect([picks.next(), picks.next()]).toEqual(['n1', 'n1'])
  })
})
