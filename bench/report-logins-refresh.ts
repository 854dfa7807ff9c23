/**
 * What the bench prints about contender (i), the gateway refreshing expiring
 * tokens, and about the sign-in contenders (l) and (m): lines for the console
 * and sections for the markdown report.
 */
import type { LoginReport } from './login-contenders.js'
import { median } from './percentiles.js'
import type { RefreshSummary } from './refresh-checks.js'
import { integer, ms, ratio } from './report-format.js'
import type { ContenderResult } from './report.js'

/** (i)'s counts at the IdP and its p99 against the hot path's (d). */
export function refreshLine (results: ContenderResult[], refresh: RefreshSummary | undefined): string {
  const refreshing = results.find(r => r.key === 'i')
  if (!refreshing || !refresh) return ''
  const gateway = results.find(r => r.key === 'd')
  const redis = refreshing.redisCommandsPer1000Requests
  const matched = refresh.runsMismatched === 0
    ? `every one of its ${refresh.runs.length} runs matched`
    : `⚠ ${refresh.runsMismatched} of its ${refresh.runs.length} runs did not (${refresh.runs.map(r => `${r.tokenCalls}/${r.expiries}`).join(', ')})`
  const share = refresh.tokenCalls > 0 ? `one token-endpoint call per ${integer.format(refresh.requests / refresh.tokenCalls)} requests` : 'no refresh happened'
  return `(i) refreshes: ${integer.format(refresh.tokenCalls)} token-endpoint calls for ${integer.format(refresh.expiries)} session expiries, ` +
    `counted at the IdP run by run (${matched}); ${integer.format(refresh.serverErrors)} 5xx, ${integer.format(refresh.errors)} failed requests; ${share}` +
    (gateway ? `; p99 ÷ (d) ${ratio(refreshing.p99Ms / gateway.p99Ms)}, throughput ÷ (d) ${ratio(refreshing.requestsPerSecond / gateway.requestsPerSecond)}` : '') +
    (redis && redis.length > 0 ? `; its Redis commands per 1 000 requests ${ms(median(redis))} (median of slices)` : '') + '.'
}

export function refreshSection (results: ContenderResult[], refresh: RefreshSummary | undefined): string {
  const line = refreshLine(results, refresh)
  if (!line || !refresh) return ''
  return [
    `(i) is a gateway process of its own (own Redis, own IdP process issuing ${refresh.accessTokenTtlSeconds} s access tokens, TOKEN_REFRESH_SKEW=0) ` +
      `with ${refresh.sessions} sessions signed in through real logins. Each of its runs takes the next sessions in turn, every one with an expired token: ` +
      `${refresh.activeAtStart} refreshed just before the run and in use from its start, then ${refresh.refreshesPerSecond} more per second arriving ` +
      'through the run (a newcomer\'s first request is the next one sent); every other request goes to one of the sessions in use, at random. ' +
      'So refreshes run steadily, and each session expires once per run: the IdP must see exactly one refresh-token grant per session and expiry.',
    '',
    line,
  ].join('\n')
}

export function loginTable (logins: LoginReport): string {
  const direct = logins.contenders.find(r => r.key === 'm')
  const lines = [
    '| contender | sign-ins/s | p50 ms per sign-in | p99 ms per sign-in | ÷ (m) | failed sign-ins |',
    '|---|---:|---:|---:|---:|---:|',
  ]
  for (const r of logins.contenders) {
    const errors = r.errors > 0 ? `**${integer.format(r.errors)} ⚠ flagged**` : '0'
    const versus = direct ? ratio(r.requestsPerSecond / direct.requestsPerSecond) : 'n/a'
    lines.push(`| ${r.name} | ${r.requestsPerSecond.toFixed(1)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${versus} | ${errors} |`)
  }
  return lines.join('\n')
}

/** (l) ÷ (m) slice pair by slice pair: the two slices of a pair ran back to back. */
export function loginPairRatios (logins: LoginReport): string {
  const gateway = logins.contenders.find(r => r.key === 'l')
  const direct = logins.contenders.find(r => r.key === 'm')
  if (!gateway || !direct) return ''
  const pairs = gateway.runs.map((r, i) => r.requestsPerSecond / (direct.runs[i]?.requestsPerSecond ?? Number.NaN))
  return `(l) ÷ (m), pair by pair of slices: ${pairs.map(ratio).join(', ')} (median ${ratio(median(pairs))}).`
}

/** Where a sign-in's CPU goes, process by process: on a 2-core machine the sum sets the rate. */
export function loginCpuLine (logins: LoginReport): string {
  const parts = logins.contenders.filter(r => r.cpuMsPerSignIn).map(r => {
    const entries = Object.entries(r.cpuMsPerSignIn ?? {})
    const total = entries.reduce((sum, [, value]) => sum + value, 0)
    return `${r.name.split(' ')[0]} ${entries.map(([name, value]) => `${name === 'idp' ? 'IdP' : name} ${ms(value)}`).join(' + ')} = ${ms(total)} ms`
  })
  return parts.length > 0 ? `CPU per sign-in (median of slices; Redis and the stub not counted): ${parts.join('; ')}.` : ''
}

export function loginFailures (logins: LoginReport): string {
  const failed = logins.contenders.filter(r => r.firstError)
  const lines = failed.map(r => `${r.name}: first failure: ${r.firstError ?? ''}`)
  if (logins.idpServerErrors > 0) lines.push(`⚠ the IdP reported ${logins.idpServerErrors} server error(s)`)
  return lines.join('\n')
}

export function loginSection (logins: LoginReport | undefined): string {
  if (!logins) return ''
  return [
    '## Sign-ins: through the gateway, and directly at the IdP',
    '',
    `After the table: full sign-ins with ${logins.concurrency} in flight at once, from a driver process of its own; the IdP ` +
      'and the gateway each in a process of their own. (l) goes through the gateway (/bff/login, the IdP\'s authorization endpoint, its login ' +
      'form, consent, /bff/callback with the code exchange) and proves each new session with one API call; (m) is a plain OIDC client ' +
      '(openid-client) doing the same authorization request, pages and code exchange directly at the IdP: the IdP\'s own limit. ' +
      `A fresh cookie jar per sign-in, so the IdP asks for the password every time. ${logins.warmupSeconds} s warm-up each, then ` +
      `${logins.rounds} rounds of ${logins.durationSeconds} s in ${logins.sliceSeconds} s slices taking turns (l m, then m l, …); median of slices. ` +
      'A sign-in still in flight when a slice ends is finished but not counted.',
    '',
    loginTable(logins),
    '',
    loginPairRatios(logins),
    loginCpuLine(logins),
    loginFailures(logins),
  ].join('\n')
}
