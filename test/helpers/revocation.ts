/**
 * A revocation service over a store and its session manager, for isolated tests of
 * what ends sessions (no IdP to revoke tokens at, no audit trail).
 */
import { createRevocation, type Revocation } from '../../gateway/session/revocation.js'
import type { SessionManager } from '../../gateway/session/sessions.js'
import type { SessionStore } from '../../gateway/session/store.js'

export function testRevocation (store: SessionStore, sessions: SessionManager): Revocation {
  return createRevocation({
    records: store,
    index: store,
    revokeOwn: (session, reason) => sessions.revoke(session, reason),
    forgetCookie: (rawCookie, replacedBy) => sessions.forget(rawCookie, replacedBy),
    revokeRefreshToken: async () => {},
    audit: () => {},
    epochTtlMs: 86_400_000,
  })
}
