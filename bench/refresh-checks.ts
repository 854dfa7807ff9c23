/**
 * The refresh contender's correctness, run by run: the IdP must see exactly one
 * refresh-token grant per session whose expired token the run met, and no
 * request may fail. Counted at the IdP (its token-endpoint tap), not from the
 * gateway's own metrics, so a gateway that miscounts cannot pass.
 */
import type { LoadResult } from './protocol.js'

export interface RefreshRunCheck {
  seconds: number
  warmup: boolean
  /** Requests the load generator completed. */
  requests: number
  /** Sessions whose expired token the run met: those refreshed just before it and those that arrived in it. */
  expiries: number
  /** Refresh-token grants at the IdP from before the pre-run refreshes to after the run. */
  tokenCalls: number
  /** Answers 500 and above. */
  serverErrors: number
  /** Every failure: non-2xx answers, socket errors, timeouts, wrong bodies, failed pre-run refreshes. */
  errors: number
  pass: boolean
}

export interface RefreshRunInput {
  seconds: number
  warmup: boolean
  /** Sessions refreshed just before the run. */
  refreshedBefore: number
  /** Pre-run refreshes that did not answer 200 with the stub's body. */
  preRunFailures: number
  tokenCalls: number
  result: LoadResult
}

export function fiveHundreds (statusCodes: Record<string, number>): number {
  return Object.entries(statusCodes).reduce((sum, [code, count]) => Number(code) >= 500 ? sum + count : sum, 0)
}

export function refreshRunCheck (input: RefreshRunInput): RefreshRunCheck {
  const { result } = input
  const expiries = input.refreshedBefore + (result.sessionsArrived ?? 0)
  const errors = result.non2xx + result.errors + result.mismatches + input.preRunFailures
  return {
    seconds: input.seconds,
    warmup: input.warmup,
    requests: result.total,
    expiries,
    tokenCalls: input.tokenCalls,
    serverErrors: fiveHundreds(result.statusCodes),
    errors,
    pass: input.tokenCalls === expiries && errors === 0,
  }
}

export interface RefreshSettingsUsed {
  /** Sessions signed in through real logins at set-up. */
  sessions: number
  accessTokenTtlSeconds: number
  /** Sessions arriving (and so refreshed) per second of a run. */
  refreshesPerSecond: number
  activeAtStart: number
}

export interface RefreshSummary extends RefreshSettingsUsed {
  runs: RefreshRunCheck[]
  expiries: number
  tokenCalls: number
  serverErrors: number
  errors: number
  requests: number
  /** Runs whose token-endpoint calls differed from their expiries. */
  runsMismatched: number
  pass: boolean
}

export function summariseRefresh (settings: RefreshSettingsUsed, runs: RefreshRunCheck[]): RefreshSummary {
  const sum = (pick: (run: RefreshRunCheck) => number) => runs.reduce((total, run) => total + pick(run), 0)
  return {
    ...settings,
    runs,
    expiries: sum(r => r.expiries),
    tokenCalls: sum(r => r.tokenCalls),
    serverErrors: sum(r => r.serverErrors),
    errors: sum(r => r.errors),
    requests: sum(r => r.requests),
    runsMismatched: runs.filter(r => r.tokenCalls !== r.expiries).length,
    pass: runs.length > 0 && runs.every(r => r.pass),
  }
}
