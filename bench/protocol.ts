/**
 * What the benchmark's processes say to each other over their IPC channels,
 * and the one response body every contender must pass through unchanged.
 */
import type { CookieMix } from './cookie-mix.js'

/** The upstream stub's answer to `GET /orders`; the load generator checks every body against it. */
export const ORDERS_BODY = JSON.stringify({
  orders: [
    { id: '1', item: 'Blue widget', quantity: 2 },
    { id: '2', item: 'Red gadget', quantity: 1 },
  ],
})

/** A child's first message: it listens and can take load. */
export interface ReadyMessage {
  type: 'ready'
  url: string
}

export interface LoadJob {
  type: 'load'
  id: number
  url: string
  headers: Record<string, string>
  connections: number
  durationSeconds: number
  expectBody: string
  /**
   * Many users: each request carries a cookie from this file, picked at random per request
   * (the `cookie` of `headers` is replaced; session-requests.ts).
   */
  cookies?: CookieMix
  /** The refresh contender: each request carries a cookie of this rotation instead (cookie-rotation.ts, session-requests.ts). */
  rotation?: CookieRotation
}

/**
 * The refresh contender's sessions for one load run: `active` are in use from the start, `arriving`
 * are brought in one after another, `perSecond`, until `untilSeconds` after the start. A newcomer's
 * first request is the next one sent; after that every request picks a session in use at random.
 */
export interface CookieRotation {
  /** `name=value` session cookies. */
  active: string[]
  arriving: string[]
  perSecond: number
  untilSeconds: number
}

export interface LoadResult {
  type: 'result'
  id: number
  /** Mean of autocannon's per-second samples. */
  requestsPerSecond: number
  /** Latency of 2xx responses, exact (not the integer-millisecond histogram). */
  p50Ms: number
  p99Ms: number
  maxMs: number
  total: number
  non2xx: number
  /** Socket errors and timeouts. */
  errors: number
  timeouts: number
  /** 2xx responses whose body was not the upstream's. */
  mismatches: number
  statusCodes: Record<string, number>
  /** With a rotation: how many of its `arriving` sessions were brought in (each got a request). */
  sessionsArrived?: number
}

export interface LoadFailure {
  type: 'failure'
  id: number
  message: string
}

export type LoadReply = LoadResult | LoadFailure
