/**
 * A login replacing a browser's session keeps the old session's grant alive at
 * the IdP when both came from one IdP session (they may share that grant).
 */
import { describe, expect, it } from 'vitest'
import { sharesIdpSession } from '../../gateway/session/sessions.js'
import type { SessionMeta } from '../../gateway/session/store.js'

const meta = (sub: string, sid?: string): SessionMeta =>
  ({ sub, ...(sid !== undefined ? { sid } : {}), createdAt: 0, absoluteExpiresAt: 1, ip: '127.0.0.1', userAgent: 'unit' })

describe('sharesIdpSession', () => {
  it('is true for the same user through the same IdP session (a step-up, a repeated login)', () => {
    expect(sharesIdpSession(meta('alice', 'sid-1'), { sub: 'alice', sid: 'sid-1' })).toBe(true)
  })

  it('is false for another user, or another IdP session of the same user', () => {
    expect(sharesIdpSession(meta('alice', 'sid-1'), { sub: 'bob', sid: 'sid-1' })).toBe(false)
    expect(sharesIdpSession(meta('alice', 'sid-1'), { sub: 'alice', sid: 'sid-2' })).toBe(false)
    expect(sharesIdpSession(meta('alice'), { sub: 'bob' })).toBe(false)
  })

  it('keeps the grant when an IdP gives no sid to tell them apart: the new session must not lose its tokens', () => {
    expect(sharesIdpSession(meta('alice'), { sub: 'alice', sid: 'sid-1' })).toBe(true)
    expect(sharesIdpSession(meta('alice', 'sid-1'), { sub: 'alice' })).toBe(true)
  })
})
