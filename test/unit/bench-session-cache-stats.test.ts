import { describe, expect, it } from 'vitest'
import { bytesPerCachedSession, cachedSessions, hitRate, parseSessionCacheMetrics, sessionCacheSlice } from '../../bench/session-cache-stats.js'
import { requestPathCommands } from '../../bench/redis-commands.js'

const metrics = (hits: number, misses: number, entries: number, bytes: number) => [
  '# HELP bff_session_cache_hits_total Session lookups served from the cache',
  '# TYPE bff_session_cache_hits_total counter',
  `bff_session_cache_hits_total ${hits}`,
  `bff_session_cache_misses_total{reason="absent"} ${misses - 1}`,
  'bff_session_cache_misses_total{reason="expired"} 1',
  `bff_session_cache_entries ${entries}`,
  `bff_session_cache_bytes ${bytes}`,
  'bff_nodejs_gc_duration_seconds_sum{kind="minor"} 0.5',
].join('\n')

describe('the session-cache numbers the bench reads from a gateway\'s /metrics', () => {
  it('reads the counters and gauges, summing labelled series', () => {
    expect(parseSessionCacheMetrics(metrics(10, 5, 3, 9000))).toEqual({ hits: 10, misses: 5, entries: 3, bytes: 9000 })
  })

  it('reads a gateway without them as not reported, never as zero', () => {
    expect(parseSessionCacheMetrics('bff_nodejs_gc_duration_seconds_sum 1\nbff_session_cache_trusted 1')).toEqual({
      hits: undefined, misses: undefined, entries: undefined, bytes: undefined,
    })
    const slices = [sessionCacheSlice({}, {})]
    expect(hitRate(slices)).toBeUndefined()
    expect(cachedSessions(slices)).toBeUndefined()
    expect(bytesPerCachedSession(slices)).toBeUndefined()
  })

  it('takes a slice\'s hits and misses as the difference, its sessions and bytes as they were after it', () => {
    const before = parseSessionCacheMetrics(metrics(100, 50, 10, 50_000))
    const after = parseSessionCacheMetrics(metrics(130, 120, 40, 200_000))
    expect(sessionCacheSlice(before, after)).toEqual({ hits: 30, misses: 70, entries: 40, bytes: 200_000 })
  })

  it('weighs the hit rate by requests over all slices, and gives bytes per cached session', () => {
    const slices = [
      { hits: 90, misses: 10, entries: 100, bytes: 500_000 },
      { hits: 0, misses: 900, entries: 1000, bytes: 6_000_000 },
      { hits: 5, misses: 5, entries: 0, bytes: 0 },
    ]
    expect(hitRate(slices)).toBeCloseTo(95 / 1010)
    expect(cachedSessions(slices)).toBe(100)
    // An empty cache says nothing about bytes per session; the median of 5 000 and 6 000.
    expect(bytesPerCachedSession(slices)).toBe(5500)
  })
})

describe('Redis commands on the request path', () => {
  it('leaves out every gateway\'s heartbeat PING, the metrics\' SCAN and the counter\'s own INFO', () => {
    const info = [
      '# Stats', 'total_connections_received:9', 'total_commands_processed:1502',
      '# Commandstats', 'cmdstat_ping:calls=300,usec=10,usec_per_call=0.03', 'cmdstat_scan:calls=200,usec=5000',
      'cmdstat_hgetall:calls=1000,usec=2000', 'cmdstat_pingx:calls=7,usec=1', 'cmdstat_info:calls=2,usec=90',
    ].join('\r\n')
    expect(requestPathCommands(info)).toBe(1000)
    expect(requestPathCommands('total_commands_processed:42\r\n')).toBe(42)
    expect(() => requestPathCommands('# Stats\r\n')).toThrow()
  })
})
