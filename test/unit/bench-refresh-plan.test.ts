import { describe, expect, it } from 'vitest'
import { ACTIVE_AT_START, arrivalsPerRun, arrivalWindowSeconds, SessionRing, sessionsPerRun } from '../../bench/refresh-plan.js'

describe('the refresh contender\'s plan', () => {
  it('lets sessions arrive through all but the last half second of a run (a quarter of a short one)', () => {
    expect(arrivalWindowSeconds(2)).toBe(1.5)
    expect(arrivalWindowSeconds(1)).toBe(0.75)
    expect(arrivalsPerRun(2, 10)).toBe(15)
    expect(arrivalsPerRun(1, 10)).toBe(8)
    expect(arrivalsPerRun(2, 0.1)).toBe(1)
    expect(sessionsPerRun(2, 10)).toBe(ACTIVE_AT_START + 15)
  })

  it('hands out the sessions in turn, wrapping around the ring', () => {
    const ring = new SessionRing(['s0', 's1', 's2', 's3', 's4'], 5000, 0)
    expect(ring.take(3).cookies).toEqual(['s0', 's1', 's2'])
    expect(ring.take(3).cookies).toEqual(['s3', 's4', 's0'])
    expect(() => ring.take(6)).toThrow(/needs 6 sessions/)
  })

  it('says when every session taken has rested past its token\'s life since its last use', () => {
    const ring = new SessionRing(['s0', 's1', 's2', 's3'], 5000, 1000)
    const first = ring.take(2)
    expect(first.readyAt).toBe(6000)
    ring.release(first.indexes, 9000)
    expect(ring.take(2).readyAt).toBe(6000)
    // s0 again (used until 9000), with s2 (never used since set-up).
    expect(ring.take(3).readyAt).toBe(14_000)
  })
})
