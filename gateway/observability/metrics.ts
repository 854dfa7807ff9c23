/**
 * Prometheus metrics, one registry per gateway instance (several instances may
 * share a process in tests). Served on the admin listener only.
 *
 * Every label value comes from a closed set: each new value is a series kept
 * for the life of the process, so one that a request could choose would let
 * anyone grow the registry without bound. Where each set comes from is noted
 * on its metric.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** What the session cache counts (see `SessionCacheStats` in session/session-cache.ts). */
export interface SessionCacheCounts {
  readonly hits: number
  readonly misses: number
  readonly entries: number
  readonly bytes: number
}

export interface GatewayMetrics {
  registry: Registry
  /**
   * `route`: the matched route's template (`/api/*`, never the path asked for), `unmatched` when none;
   * `method`: one Node's parser knows (`http.METHODS`; it refuses any other);
   * `status`: 100 to 599 (Fastify refuses any other code, the upstream's included).
   */
  httpRequests: Counter<'route' | 'method' | 'status'>
  /** `upstream`: a prefix of the route policy; `status` as above. */
  upstreamDuration: Histogram<'upstream' | 'status'>
  refreshAttempts: Counter
  refreshSuccesses: Counter
  /** `reason`: a `RefreshFailure`. */
  refreshFailures: Counter<'reason'>
  refreshLockWaits: Counter
  refreshDuration: Histogram
  /** `event` and `reason`: checked against their sets by `createAudit` (audit.ts); anything else counts as `other`. */
  auditEvents: Counter<'event' | 'reason'>
  /**
   * Tokens for upstreams fetched from the IdP (narrowed user tokens and client tokens; the session's
   * own refreshes are `bff_token_refresh_*`). `audience`: an audience of the route policy, or
   * `default` (a client token for the IdP's default audience); `type`: `user` or `client`;
   * `grant`: `refresh_token`, `token_exchange` or `client_credentials`.
   */
  upstreamTokenFetches: Counter<'audience' | 'type' | 'grant'>
  /** As above; `reason`: `rejected`, `not_granted` or `idp_unavailable`. */
  upstreamTokenFailures: Counter<'audience' | 'type' | 'reason'>
  /** Forwarded requests whose token was already kept (no token call); `audience` may also be `session` (the session's own token). */
  /**
   * The cell that counts requests sent with a kept token for these labels (audiences come from the
   * policy, so they are bounded). A hit on the hot path is `cell.n += 1`; the counter reads every
   * cell at scrape time.
   */
  upstreamTokenCacheHitCell (labels: TokenCacheHitLabels): { n: number }
  storeErrors: Counter
  /** `status`: `active` or `disabled`; `source`: an `AccountChangeSource` (`operator`, `security_event`). */
  accountStatusChanges: Counter<'status' | 'source'>
  /**
   * Security Event Tokens received (Shared Signals). `type`: a `SecurityEventType`, `other` for any
   * other event type, `none` when the SET was refused before its events were read; `result`: a
   * `SecurityEventResult` (`accepted`, `ignored`, or the refusal's RFC 8935 code).
   */
  securityEvents: Counter<'type' | 'result'>
  /** 401 `step_up_required` answers; `source`: `policy` (a rule's acr/maxAge) or `upstream` (its RFC 9470 challenge). */
  stepUpChallenges: Counter<'source'>
  /** Reports the number of stored sessions at scrape time (cached briefly: counting can scan). */
  trackSessions (count: () => Promise<number>): void
  /**
   * Reports at scrape time whether the session cache is trusted (its invalidation channel up), its
   * hits and misses, and what it holds. The cache counts in plain integers: a hit on the hot path
   * costs an increment, not a metrics call.
   */
  trackSessionCache (cache: { readonly trusted: boolean, readonly stats: SessionCacheCounts }): void
}

const SESSION_COUNT_CACHE_MS = 15_000

export interface TokenCacheHitLabels {
  audience: string
  type: 'user' | 'client'
}

export function createMetrics (): GatewayMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'bff_' })
  const registers = [registry]
  const tokenCacheHitCells = new Map<string, { labels: TokenCacheHitLabels, n: number }>()
  // eslint-disable-next-line no-new -- registered with the registry, which keeps it
  new Counter({
    name: 'bff_upstream_token_cache_hits_total',
    help: 'Forwarded requests sent with a token already kept (in the session, or the instance for client tokens), by audience and token type',
    labelNames: ['audience', 'type'],
    registers,
    // The cells hold the totals: the counter is set to them, not added to.
    collect () {
      this.reset()
      for (const { labels, n } of tokenCacheHitCells.values()) this.inc({ ...labels }, n)
    },
  })
  return {
    registry,
    httpRequests: new Counter({
      name: 'bff_http_requests_total',
      help: 'Requests answered on the public listener, by route template and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    upstreamDuration: new Histogram({
      name: 'bff_upstream_duration_seconds',
      help: 'Time from sending a request to the upstream to its answer (the whole of a small answer, the head of a streamed one) or its failure, by the status the browser got',
      labelNames: ['upstream', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    refreshAttempts: new Counter({ name: 'bff_token_refresh_attempts_total', help: 'Calls to the token endpoint to refresh a session', registers }),
    refreshSuccesses: new Counter({ name: 'bff_token_refresh_successes_total', help: 'Refreshes that stored new tokens', registers }),
    refreshFailures: new Counter({
      name: 'bff_token_refresh_failures_total',
      help: 'Refreshes that failed, by reason',
      labelNames: ['reason'],
      registers,
    }),
    refreshLockWaits: new Counter({
      name: 'bff_token_refresh_lock_waits_total',
      help: 'Requests that waited for another request or instance to finish a refresh',
      registers,
    }),
    refreshDuration: new Histogram({
      name: 'bff_token_refresh_duration_seconds',
      help: 'Latency of successful refreshes at the token endpoint',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    auditEvents: new Counter({
      name: 'bff_audit_events_total',
      help: 'Security-relevant events (logins, logouts, revocations, refusals), by event and reason',
      labelNames: ['event', 'reason'],
      registers,
    }),
    upstreamTokenFetches: new Counter({
      name: 'bff_upstream_token_fetches_total',
      help: 'Calls to the token endpoint for an upstream\'s token (narrowed user tokens, client tokens), by audience, token type and grant',
      labelNames: ['audience', 'type', 'grant'],
      registers,
    }),
    upstreamTokenFailures: new Counter({
      name: 'bff_upstream_token_failures_total',
      help: 'Upstream tokens that could not be had, by audience, token type and reason',
      labelNames: ['audience', 'type', 'reason'],
      registers,
    }),
    upstreamTokenCacheHitCell (labels) {
      const key = `${labels.type}\n${labels.audience}`
      let cell = tokenCacheHitCells.get(key)
      if (cell === undefined) {
        cell = { labels, n: 0 }
        tokenCacheHitCells.set(key, cell)
      }
      return cell
    },
    storeErrors: new Counter({ name: 'bff_session_store_errors_total', help: 'Session store operations that failed', registers }),
    accountStatusChanges: new Counter({
      name: 'bff_account_status_changes_total',
      help: 'Accounts disabled or enabled, by new status and by who asked',
      labelNames: ['status', 'source'],
      registers,
    }),
    securityEvents: new Counter({
      name: 'bff_security_events_total',
      help: 'Shared Signals events received, by event type and result',
      labelNames: ['type', 'result'],
      registers,
    }),
    stepUpChallenges: new Counter({
      name: 'bff_step_up_challenges_total',
      help: 'Requests answered 401 step_up_required, by what asked for the stronger sign-in',
      labelNames: ['source'],
      registers,
    }),
    trackSessions (count) {
      let cached: { value: number, at: number } | undefined
      // eslint-disable-next-line no-new -- registered with the registry, which keeps it
      new Gauge({
        name: 'bff_sessions',
        help: 'Session records in the store: live sessions plus revoked ones not yet expired',
        registers,
        async collect () {
          if (!cached || Date.now() - cached.at > SESSION_COUNT_CACHE_MS) {
            try {
              cached = { value: await count(), at: Date.now() }
            } catch {
              // Store down: report nothing new rather than fail the whole scrape.
            }
          }
          if (cached) this.set(cached.value)
        },
      })
    },
    trackSessionCache (cache) {
      // eslint-disable-next-line no-new -- registered with the registry, which keeps it
      new Gauge({
        name: 'bff_session_cache_trusted',
        help: '1 while the in-process session cache is in use; 0 while its invalidation channel is down and every request reads the store',
        registers,
        collect () { this.set(cache.trusted ? 1 : 0) },
      })
      const { stats } = cache
      /* eslint-disable no-new -- registered with the registry, which keeps them */
      new Counter({
        name: 'bff_session_cache_hits_total',
        help: 'Session lookups answered from the in-process cache (no Redis read, no decryption)',
        registers,
        // The cache's own count is the total: the counter is set to it, not added to.
        collect () { this.reset(); this.inc(stats.hits) },
      })
      new Counter({
        name: 'bff_session_cache_misses_total',
        help: 'Session lookups on a trusted cache that found nothing usable (not cached, expired, evicted), so read from the store; lookups while the cache is distrusted are neither hits nor misses',
        registers,
        collect () { this.reset(); this.inc(stats.misses) },
      })
      new Gauge({
        name: 'bff_session_cache_entries',
        help: 'Sessions held in the in-process cache',
        registers,
        collect () { this.set(stats.entries) },
      })
      new Gauge({
        name: 'bff_session_cache_bytes',
        help: 'Estimated heap bytes of the sessions held in the in-process cache, counted against SESSION_CACHE_MEMORY',
        registers,
        collect () { this.set(stats.bytes) },
      })
      /* eslint-enable no-new */
    },
  }
}
