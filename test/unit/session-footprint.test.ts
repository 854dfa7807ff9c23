/**
 * The estimate a cached session is counted at against SESSION_CACHE_MEMORY: it
 * grows with what the session holds, byte for byte where V8 stores a byte per
 * character. (Its calibration against the real heap is bench/cache-memory.ts.)
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ENTRY_OVERHEAD, estimateSessionBytes } from '../../gateway/session/session-footprint.js'
import type { ActiveSession, SessionSecrets } from '../../gateway/session/active-session.js'

function session (secrets: Partial<SessionSecrets> = {}, claims: Record<string, unknown> = { sub: 'alice' }): ActiveSession {
  return {
    handle: 'h'.repeat(32),
    version: 1,
    meta: { sub: 'alice', createdAt: 1_750_000_000_000, absoluteExpiresAt: 1_750_043_200_000, ip: '127.0.0.1', userAgent: 'Mozilla/5.0 (X11; Linux x86_64)', epoch: 0 },
    lastSeenAt: 1_750_000_000_000,
    idleExpiresAt: 1_750_001_800_000,
    secrets: { accessToken: 'a'.repeat(800), accessTokenExpiresAt: 1_750_000_300_000, csrfToken: 'c'.repeat(43), claims, roles: ['user'], ...secrets },
    cookie: { id: 'i'.repeat(24), key: randomBytes(32), handle: 'h'.repeat(32) },
  }
}

describe('estimated bytes of a cached session', () => {
  it('is its fixed overhead plus what its values take', () => {
    const bytes = estimateSessionBytes(session())
    expect(bytes).toBeGreaterThan(ENTRY_OVERHEAD + 800 + 43 + 32)
    expect(bytes).toBeLessThan(ENTRY_OVERHEAD + 2500)
  })

  it('grows by a token\'s length (a byte per character) when the session holds one more', () => {
    const extra = estimateSessionBytes(session({ refreshToken: 'r'.repeat(1000) })) - estimateSessionBytes(session())
    expect(extra).toBeGreaterThanOrEqual(1000)
    expect(extra).toBeLessThanOrEqual(1000 + 32)
  })

  it('counts narrowed tokens, their audiences and a DPoP key', () => {
    const lean = estimateSessionBytes(session())
    const full = estimateSessionBytes(session({
      audiences: ['https://orders.example'],
      apiTokens: { 'https://orders.example': { token: 't'.repeat(900), expiresAt: 1_750_000_300_000, dpop: true } },
      dpopKey: { kty: 'EC', crv: 'P-256', x: 'x'.repeat(43), y: 'y'.repeat(43), d: 'd'.repeat(43) },
    }))
    expect(full - lean).toBeGreaterThan(900 + 22 + 3 * 43)
  })

  it('counts two bytes per character for a string beyond Latin-1, as V8 stores it', () => {
    const latin = estimateSessionBytes(session({}, { sub: 'alice', name: 'Zoe Zolc'.repeat(10) }))
    const wide = estimateSessionBytes(session({}, { sub: 'alice', name: 'Żoe Żolc'.repeat(10) }))
    expect(wide - latin).toBe(80)
  })

  it('walks nested claims', () => {
    const flat = estimateSessionBytes(session({}, { sub: 'alice' }))
    const nested = estimateSessionBytes(session({}, { sub: 'alice', realm_access: { roles: ['r'.repeat(100), 's'.repeat(100)] } }))
    expect(nested - flat).toBeGreaterThan(200)
  })
})
