import { describe, expect, it } from 'vitest'
import { refreshRunCheck, summariseRefresh } from '../../bench/refresh-checks.js'
import type { LoadResult } from '../../bench/protocol.js'

function result (overrides: Partial<LoadResult> = {}): LoadResult {
  return {
    type: 'result',
    id: 1,
    requestsPerSecond: 3000,
    p50Ms: 5,
    p99Ms: 10,
    maxMs: 20,
    total: 6000,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    mismatches: 0,
    statusCodes: { 200: 6000 },
    sessionsArrived: 15,
    ...overrides,
  }
}

const run = (overrides: Partial<Parameters<typeof refreshRunCheck>[0]> = {}) =>
  refreshRunCheck({ seconds: 2, warmup: false, refreshedBefore: 10, preRunFailures: 0, tokenCalls: 25, result: result(), ...overrides })

describe('the refresh contender\'s check of each run', () => {
  it('passes a run with one token-endpoint call per session expiry and no failure', () => {
    expect(run()).toMatchObject({ expiries: 25, tokenCalls: 25, errors: 0, serverErrors: 0, pass: true })
  })

  it('fails a run with a second call for one expiry, or a missed refresh', () => {
    expect(run({ tokenCalls: 26 }).pass).toBe(false)
    expect(run({ tokenCalls: 24 }).pass).toBe(false)
  })

  it('fails a run with any failed request, and counts its 5xx apart', () => {
    const failed = run({ result: result({ non2xx: 3, statusCodes: { 200: 5997, 502: 2, 401: 1 } }) })
    expect(failed).toMatchObject({ errors: 3, serverErrors: 2, pass: false })
    expect(run({ result: result({ mismatches: 1 }) }).pass).toBe(false)
    expect(run({ preRunFailures: 1 }).pass).toBe(false)
  })

  it('sums the runs, and passes only when every run did', () => {
    const settings = { sessions: 200, accessTokenTtlSeconds: 5, refreshesPerSecond: 10, activeAtStart: 10 }
    const summary = summariseRefresh(settings, [run(), run({ tokenCalls: 26 })])
    expect(summary).toMatchObject({ expiries: 50, tokenCalls: 51, requests: 12_000, runsMismatched: 1, pass: false })
    expect(summariseRefresh(settings, [run(), run()]).pass).toBe(true)
    expect(summariseRefresh(settings, []).pass).toBe(false)
  })
})
