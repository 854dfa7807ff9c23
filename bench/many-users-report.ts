/**
 * The numbers of the many-users and cold contenders beside the table: their
 * targets (each at ≥ 0.9× the bare proxy's throughput and ≤ 1.3× its p99, as
 * the hot path's), and what the session cache does for them — hit rate,
 * sessions held, estimated bytes per session held — with Redis commands per
 * 1 000 requests, at each number of sessions measured.
 */
import { median } from './percentiles.js'
import { integer, ratio } from './report-format.js'
import type { ContenderKey } from './contenders.js'
import type { ContenderResult, TargetCheck } from './report.js'
import { bytesPerCachedSession, cachedSessions, hitRate } from './session-cache-stats.js'

/** The contenders whose cache numbers are shown: (d), one user, for reference. */
const CACHE_ROWS: readonly ContenderKey[] = ['d', 'f', 'g', 'h']
const MANY_USERS: readonly ContenderKey[] = ['f', 'g']

function target (description: string, actual: number, comparison: '>=' | '<=', limit: number): TargetCheck {
  return { description, actual, target: limit, comparison, pass: comparison === '>=' ? actual >= limit : actual <= limit }
}

/** `(f) this gateway, 50,000 users, uniform` → `(f) many users, uniform`, without the figures. */
function shortName (result: ContenderResult): string {
  switch (result.key) {
    case 'f': return '(f) many users, uniform'
    case 'g': return '(g) many users, Zipf'
    case 'h': return '(h) cold (cache off)'
    default: return result.name
  }
}

/** (f), (g) and (h) against the bare proxy; nothing when (b) or all of them are missing. */
export function manyUsersTargets (results: readonly ContenderResult[]): TargetCheck[] {
  const bare = results.find(r => r.key === 'b')
  if (!bare) return []
  return results.filter(r => r.key === 'f' || r.key === 'g' || r.key === 'h').flatMap(r => [
    target(`${shortName(r)} throughput vs bare proxy`, r.requestsPerSecond / bare.requestsPerSecond, '>=', 0.9),
    target(`${shortName(r)} p99 vs bare proxy`, r.p99Ms / bare.p99Ms, '<=', 1.3),
  ])
}

/** One number of sessions and what was measured with it. */
export interface SizeResults {
  sessions: number
  contenders: readonly ContenderResult[]
}

const orNa = (value: number | undefined, format: (v: number) => string) => value === undefined || Number.isNaN(value) ? 'n/a' : format(value)
const percent = (value: number) => `${(value * 100).toFixed(1)} %`

/**
 * A row per gateway contender and number of sessions. The hit rate is over every measured slice;
 * sessions held and bytes per session held are medians of the values after each slice; bytes are
 * the gateway's own estimate (`bff_session_cache_bytes`).
 */
export function sessionCacheTable (sizes: readonly SizeResults[]): string {
  const rows: string[] = []
  for (const { sessions, contenders } of sizes) {
    const bare = contenders.find(r => r.key === 'b')
    for (const key of CACHE_ROWS) {
      const r = contenders.find(c => c.key === key)
      if (!r) continue
      const slices = r.sessionCache ?? []
      const commands = r.redisCommandsPer1000Requests
      rows.push(`| ${shortName(r)} | ${integer.format(MANY_USERS.includes(key) ? sessions : 1)} | ` +
        `${orNa(bare && r.requestsPerSecond / bare.requestsPerSecond, ratio)} | ${orNa(bare && r.p99Ms / bare.p99Ms, ratio)} | ` +
        `${orNa(hitRate(slices), percent)} | ${orNa(cachedSessions(slices), integer.format)} | ` +
        `${orNa(bytesPerCachedSession(slices), integer.format)} | ` +
        `${orNa(commands && commands.length > 0 ? median(commands) : undefined, v => v.toFixed(1))} |`)
    }
  }
  if (rows.length === 0) return ''
  return [
    '| contender | sessions | req/s ÷ (b) | p99 ÷ (b) | cache hit rate | sessions cached | bytes per cached session | Redis commands per 1 000 requests |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n')
}
