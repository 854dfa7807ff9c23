/**
 * The gateway's session-cache numbers for a slice of load: its hits and
 * misses in the slice, and how many sessions the cache held after it and in
 * how many (estimated) bytes, read from the gateway's own admin `/metrics`
 * before and after, as the bench reads its garbage-collection time.
 *
 * A gateway without these metrics (built before they were added) reads as
 * "not reported": every figure is then undefined and printed as n/a.
 */
import { median } from './percentiles.js'

export const SESSION_CACHE_METRICS = {
  hits: 'bff_session_cache_hits_total',
  misses: 'bff_session_cache_misses_total',
  entries: 'bff_session_cache_entries',
  bytes: 'bff_session_cache_bytes',
} as const

/** What a gateway's /metrics says at one moment; a metric it does not report is undefined. */
export interface SessionCacheCounters {
  hits?: number | undefined
  misses?: number | undefined
  entries?: number | undefined
  bytes?: number | undefined
}

/** One slice: hits and misses during it, entries and bytes at its end. */
export type SessionCacheSlice = SessionCacheCounters

/** Sums every series of a metric (whatever its labels), or undefined when there is none. */
function metricSum (text: string, name: string): number | undefined {
  let total: number | undefined
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
    total = (total ?? 0) + Number(match[1])
  }
  return total
}

export function parseSessionCacheMetrics (text: string): SessionCacheCounters {
  return {
    hits: metricSum(text, SESSION_CACHE_METRICS.hits),
    misses: metricSum(text, SESSION_CACHE_METRICS.misses),
    entries: metricSum(text, SESSION_CACHE_METRICS.entries),
    bytes: metricSum(text, SESSION_CACHE_METRICS.bytes),
  }
}

const difference = (before?: number, after?: number) =>
  before === undefined || after === undefined ? undefined : after - before

export function sessionCacheSlice (before: SessionCacheCounters, after: SessionCacheCounters): SessionCacheSlice {
  return {
    hits: difference(before.hits, after.hits),
    misses: difference(before.misses, after.misses),
    entries: after.entries,
    bytes: after.bytes,
  }
}

/** Hits over lookups across all slices (each request counts once), or undefined when not reported. */
export function hitRate (slices: readonly SessionCacheSlice[]): number | undefined {
  let hits = 0
  let lookups = 0
  for (const slice of slices) {
    if (slice.hits === undefined || slice.misses === undefined) continue
    hits += slice.hits
    lookups += slice.hits + slice.misses
  }
  return lookups > 0 ? hits / lookups : undefined
}

/** Median over slices of the sessions held at a slice's end. */
export function cachedSessions (slices: readonly SessionCacheSlice[]): number | undefined {
  const values = slices.flatMap(s => s.entries === undefined ? [] : [s.entries])
  return values.length > 0 ? median(values) : undefined
}

/** Median over slices of the cache's estimated bytes per session held, at each slice's end. */
export function bytesPerCachedSession (slices: readonly SessionCacheSlice[]): number | undefined {
  const values = slices.flatMap(s => s.bytes === undefined || s.entries === undefined || s.entries === 0 ? [] : [s.bytes / s.entries])
  return values.length > 0 ? median(values) : undefined
}
