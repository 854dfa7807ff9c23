import { describe, expect, it } from 'vitest'
import { manyUsersTargets, sessionCacheTable } from '../../bench/many-users-report.js'
import type { ContenderResult } from '../../bench/report.js'
import type { ContenderKey } from '../../bench/contenders.js'
import type { LoadResult } from '../../bench/protocol.js'

function result (key: ContenderKey, requestsPerSecond: number, p99Ms: number, more: Partial<ContenderResult> = {}): ContenderResult {
  return {
    key,
    name: `(${key}) contender`,
    warmup: {} as LoadResult,
    runs: [],
    requestsPerSecond,
    p50Ms: 1,
    p99Ms,
    errors: 0,
    throughputVsBare: Number.NaN,
    p99VsBare: Number.NaN,
    ...more,
  }
}

describe('the many-users targets', () => {
  it('holds (f), (g) and (h) each to ≥ 0.9× the bare proxy\'s throughput and ≤ 1.3× its p99', () => {
    const targets = manyUsersTargets([
      result('b', 10_000, 5), result('d', 10_000, 5),
      result('f', 9000, 6.5), result('g', 8999, 6.6), result('h', 5000, 10),
    ])
    expect(targets.map(t => [t.description, t.pass])).toEqual([
      ['(f) many users, uniform throughput vs bare proxy', true],
      ['(f) many users, uniform p99 vs bare proxy', true],
      ['(g) many users, Zipf throughput vs bare proxy', false],
      ['(g) many users, Zipf p99 vs bare proxy', false],
      ['(h) cold (cache off) throughput vs bare proxy', false],
      ['(h) cold (cache off) p99 vs bare proxy', false],
    ])
  })

  it('has nothing to check without the bare proxy or the new contenders', () => {
    expect(manyUsersTargets([result('f', 1, 1)])).toEqual([])
    expect(manyUsersTargets([result('b', 1, 1), result('d', 1, 1)])).toEqual([])
  })
})

describe('the session-cache table', () => {
  it('shows hit rate, sessions cached and bytes per cached session at each number of sessions, n/a where not reported', () => {
    const first = [
      result('b', 10_000, 5),
      result('f', 9000, 5, {
        sessionCache: [{ hits: 200, misses: 800, entries: 10_000, bytes: 52_000_000 }],
        redisCommandsPer1000Requests: [1600, 1650, 1700],
      }),
      result('h', 5000, 10, { sessionCache: [{}], redisCommandsPer1000Requests: [2000] }),
    ]
    const table = sessionCacheTable([
      { sessions: 50_000, contenders: first },
      { sessions: 500_000, contenders: [result('b', 10_000, 5), result('f', 8000, 5)] },
    ])
    expect(table.split('\n').slice(2)).toEqual([
      '| (f) many users, uniform | 50,000 | 0.90× | 1.00× | 20.0 % | 10,000 | 5,200 | 1650.0 |',
      '| (h) cold (cache off) | 1 | 0.50× | 2.00× | n/a | n/a | n/a | 2000.0 |',
      '| (f) many users, uniform | 500,000 | 0.80× | 1.00× | n/a | n/a | n/a | n/a |',
    ])
    expect(sessionCacheTable([{ sessions: 50_000, contenders: [result('b', 1, 1)] }])).toBe('')
  })
})
