/**
 * Client-side bookkeeping for the fault suite: every request records what the
 * client got (status, error code, Set-Cookie, timing) and carries a tag the
 * upstream API records, so a test can tell exactly which requests reached it.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { UpstreamApi } from '../../upstream-mock/api.js'

/** Header the gateway forwards like any other; the API keeps it in `received`. */
export const TAG_HEADER = 'x-fault-tag'

export interface Outcome {
  tag: string
  method: string
  url: string
  startedAt: number
  endedAt: number
  /** 0 when no HTTP answer arrived (refused, reset, timed out on our side). */
  status: number
  /** The contract's `error` code of a JSON error body. */
  error?: string
  contentType: string
  setCookies: string[]
  body: string
  networkError?: string
}

let sequence = 0
const nextTag = () => `t${process.pid}-${++sequence}`

export interface SendOptions extends RequestInit {
  /** Abandon the request after this long (a hung request fails the test instead of the run). */
  timeoutMs?: number
}

/** One request, never throwing: a network failure is an outcome with status 0. */
export async function send (url: string, options: SendOptions = {}): Promise<Outcome> {
  const { timeoutMs = 15_000, headers, ...init } = options
  const tag = nextTag()
  const method = (init.method ?? 'GET').toUpperCase()
  const common = { tag, method, url, startedAt: Date.now() }
  try {
    const response = await fetch(url, {
      ...init,
      headers: { ...(headers as Record<string, string> | undefined), [TAG_HEADER]: tag },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    })
    const body = await response.text()
    const contentType = response.headers.get('content-type') ?? ''
    let error: string | undefined
    if (contentType.includes('json')) {
      try {
        const parsed = JSON.parse(body) as { error?: unknown }
        if (typeof parsed.error === 'string') error = parsed.error
      } catch {
        // Left undefined: the assertion on `error` reports it.
      }
    }
    const setCookies = response.headers.getSetCookie()
    return { ...common, endedAt: Date.now(), status: response.status, contentType, setCookies, body, ...(error ? { error } : {}) }
  } catch (failure) {
    const cause = (failure as Error & { cause?: { code?: string } }).cause
    return { ...common, endedAt: Date.now(), status: 0, contentType: '', setCookies: [], body: '', networkError: cause?.code ?? (failure as Error).name }
  }
}

/** The outcomes' tags that reached the upstream API. */
export function arrivedAt (api: UpstreamApi, outcomes: readonly Outcome[]): Outcome[] {
  const seen = new Set(api.received.map(r => r.headers[TAG_HEADER]).filter((t): t is string => typeof t === 'string'))
  return outcomes.filter(o => seen.has(o.tag))
}

/** Summary such as `{ "200": 120, "503 session_store_unavailable": 40 }`, for assertion messages and the report. */
export function tally (outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) {
    const key = o.status === 0 ? `network ${o.networkError ?? ''}` : `${o.status}${o.error ? ` ${o.error}` : ''}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
}

export interface SteadyLoad {
  readonly outcomes: Outcome[]
  /** Stops issuing requests and resolves once the ones in flight have finished. */
  stop (): Promise<void>
}

/** `concurrency` loops, each sending one request after the other until stopped. */
export function steadyLoad (next: (i: number) => Promise<Outcome>, concurrency: number): SteadyLoad {
  const outcomes: Outcome[] = []
  const state = { running: true, count: 0 }
  const loops = Array.from({ length: concurrency }, async () => {
    while (state.running) outcomes.push(await next(state.count++))
  })
  return {
    outcomes,
    async stop () {
      state.running = false
      await Promise.all(loops)
    },
  }
}

/** Polls `check` every `intervalMs` until it is true; false when `timeoutMs` passed first. */
export async function until (check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Session cookie lines that would remove the cookie from the browser (Max-Age ≤ 0 or an Expires in the past). */
export function clearingCookies (setCookies: readonly string[], name: string): string[] {
  return setCookies.filter(line => {
    if (!line.startsWith(`${name}=`)) return false
    const maxAge = /;\s*max-age=(-?\d+)/i.exec(line)?.[1]
    if (maxAge !== undefined) return Number(maxAge) <= 0
    const expires = /;\s*expires=([^;]+)/i.exec(line)?.[1]
    return expires !== undefined && Date.parse(expires) <= Date.now()
  })
}

let collect: (() => void) | undefined

/** Heap in use after a full garbage collection, in bytes. */
export function heapAfterGc (): number {
  if (!collect) {
    setFlagsFromString('--expose_gc')
    collect = runInNewContext('gc') as () => void
  }
  collect()
  collect()
  return process.memoryUsage().heapUsed
}

export const mib = (bytes: number) => Math.round(bytes / 1024 / 1024 * 10) / 10
