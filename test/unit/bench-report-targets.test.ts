import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { LoginReport } from '../../bench/login-contenders.js'
import type { LoadResult } from '../../bench/protocol.js'
import type { RefreshSummary } from '../../bench/refresh-checks.js'
import { loginTargets, markdown, MISSES_EXPLAINED, refreshTargets, targetLines, type BenchReport, type ContenderResult } from '../../bench/report.js'
import type { ContenderKey } from '../../bench/contenders.js'

const load = { type: 'result', id: 0, requestsPerSecond: 0, p50Ms: 0, p99Ms: 0, maxMs: 0, total: 0, non2xx: 0, errors: 0, timeouts: 0, mismatches: 0, statusCodes: {} } satisfies LoadResult

function contender (key: ContenderKey, requestsPerSecond: number, p99Ms: number): ContenderResult {
  return { key, name: `(${key})`, warmup: load, runs: [{ ...load, requestsPerSecond, p99Ms }], requestsPerSecond, p50Ms: p99Ms / 2, p99Ms, errors: 0, throughputVsBare: 1, p99VsBare: 1 }
}

function refresh (overrides: Partial<RefreshSummary> = {}): RefreshSummary {
  return {
    sessions: 200,
    accessTokenTtlSeconds: 5,
    refreshesPerSecond: 10,
    activeAtStart: 10,
    runs: [],
    expiries: 500,
    tokenCalls: 500,
    serverErrors: 0,
    errors: 0,
    requests: 100_000,
    runsMismatched: 0,
    pass: true,
    ...overrides,
  }
}

function logins (gateway: number, direct: number): LoginReport {
  const login = (key: ContenderKey, rate: number) => {
    const { throughputVsBare: _t, p99VsBare: _p, ...rest } = contender(key, rate, 100)
    return rest
  }
  return { concurrency: 8, warmupSeconds: 3, durationSeconds: 6, sliceSeconds: 2, rounds: 5, contenders: [login('l', gateway), login('m', direct)], codeExchanges: 0, idpServerErrors: 0 }
}

describe('the refresh and sign-in targets', () => {
  it('holds the refresh contender\'s p99 to twice the hot path\'s, with no 5xx and one token call per session expiry', () => {
    const results = [contender('d', 3000, 5), contender('i', 2800, 9)]
    expect(refreshTargets(results, refresh()).map(t => t.pass)).toEqual([true, true, true, true])
    const slow = refreshTargets([contender('d', 3000, 5), contender('i', 2800, 11)], refresh({ serverErrors: 2, errors: 2, runsMismatched: 1 }))
    expect(slow.map(t => t.pass)).toEqual([false, false, false, false])
    expect(refreshTargets([contender('d', 3000, 5)], refresh())).toEqual([])
  })

  it('prints counts as counts and ratios as ratios', () => {
    const lines = targetLines(refreshTargets([contender('d', 3000, 5), contender('i', 2800, 9)], refresh({ serverErrors: 3 })))
    expect(lines).toContain('MISS refresh: 5xx answers: 3 (target <= 0)')
    expect(lines).toContain('PASS refresh p99 vs gateway hot path (d): 1.80× (target <= 2×)')
  })

  it('points every run with a missed target at the measured explanation, and a clean run at nothing', () => {
    const missed = targetLines(refreshTargets([contender('d', 3000, 5), contender('i', 2800, 9)], refresh({ serverErrors: 3 })))
    expect(missed).toContain(`Why a target is missed, measured: ${MISSES_EXPLAINED}`)
    const [file, anchor] = MISSES_EXPLAINED.split('#') as [string, string]
    const headings = readFileSync(file, 'utf8').split('\n').filter(line => line.startsWith('#'))
    expect(headings.map(h => h.replace(/^#+ /, '').toLowerCase().replace(/[^a-z0-9 -]/g, '').replaceAll(' ', '-'))).toContain(anchor)
    expect(targetLines(refreshTargets([contender('d', 3000, 5), contender('i', 2800, 9)], refresh()))).not.toContain('Why a target')
  })

  it('holds sign-ins through the gateway to 0.8× the IdP\'s own rate', () => {
    expect(loginTargets(logins(80, 100))[0]?.pass).toBe(true)
    expect(loginTargets(logins(79, 100))[0]).toMatchObject({ pass: false, actual: 0.79 })
  })

  it('describes the slice order of the contenders present', () => {
    const report = {
      machine: { cpu: 'x', cores: 2, memoryGiB: 1, os: 'linux', node: 'v26', redis: '7', date: 'today', loadAverageAtStart: 0 },
      settings: { quick: true, control: false, connections: 50, warmupSeconds: 1, durationSeconds: 2, sliceSeconds: 2, rounds: 1, gatewayLogLevel: 'warn' },
      contenders: (['a', 'b', 'c', 'd', 'e', 'i'] as ContenderKey[]).map(key => contender(key, 1000, 5)),
      targets: [],
      refresh: refresh(),
      logins: logins(50, 60),
    } satisfies BenchReport
    const text = markdown(report)
    expect(text).toContain('(a b d c e i, then i e c d b a, …)')
    expect(text).toContain('(i) refreshes: 500 token-endpoint calls for 500 session expiries')
    expect(text).toContain('## Sign-ins: through the gateway, and directly at the IdP')
  })
})
