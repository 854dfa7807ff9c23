/**
 * The CSRF checks as plain functions, one per rule; `csrf.ts` applies them to
 * requests (see there for the layers and why).
 */
import { timingSafeEqual } from 'node:crypto'

export const UNSAFE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
export const CSRF_HEADER = 'x-csrf-token'

export function tokensMatch (given: string | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

export type CsrfRefusal = 'cross_site' | 'origin' | 'token'
export type CsrfVerdict = { ok: true } | { ok: false, reason: CsrfRefusal }

export function checkFetchSite (secFetchSite: string | string[] | undefined): CsrfVerdict {
  return secFetchSite === 'cross-site' ? { ok: false, reason: 'cross_site' } : { ok: true }
}

/** An absent Origin passes (older clients, same-origin GET-turned-POST); a present one must be allowed. */
export function checkOrigin (origin: string | string[] | undefined, allowed: ReadonlySet<string>): CsrfVerdict {
  if (origin === undefined) return { ok: true }
  return typeof origin === 'string' && allowed.has(origin) ? { ok: true } : { ok: false, reason: 'origin' }
}

/** A WebSocket handshake must name its origin, and an allowed one. */
export function checkWebSocketOrigin (origin: string | string[] | undefined, allowed: ReadonlySet<string>): CsrfVerdict {
  return typeof origin === 'string' && allowed.has(origin) ? { ok: true } : { ok: false, reason: 'origin' }
}
