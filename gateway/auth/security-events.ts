/**
 * What each Shared Signals event does to the sessions of the user it names,
 * as one table: CAEP session and claims events, RISC account events. The
 * same verbs as the operator's (`accounts`, `revocation`), so an IdP's signal
 * and an operator's call end or mark sessions exactly alike.
 */
import type { Accounts, AccountSessions } from '../session/accounts.js'
import type { Revocation } from '../session/revocation.js'
import type { EventSubject, SecurityEvent, SecurityEventType } from './security-event-token.js'

export interface SecurityEventEffects {
  revocation: Revocation
  accounts: Accounts
}

type Named = Exclude<EventSubject, { kind: 'unsupported' }>
type Effect = (subject: Named, effects: SecurityEventEffects) => Promise<unknown>

/** A user's sessions, or one IdP session's. */
const sessionsOf = (subject: Named): AccountSessions =>
  subject.kind === 'session' ? { sub: subject.sub, sid: subject.sid } : { sub: subject.sub }

const EFFECTS: Record<SecurityEventType, Effect> = {
  // The subject's sessions end: one IdP session's, or all of the user's (which also re-authenticates their next login).
  'session-revoked': (subject, { revocation }) => subject.kind === 'session'
    ? revocation.revoke({ sid: subject.sid, sub: subject.sub, reason: 'security_event' })
    : revocation.revoke({ sub: subject.sub, reason: 'security_event' }),
  // A password or key changed: every session of the user was signed in with the old one.
  'credential-change': (subject, { revocation }) => revocation.revoke({ sub: subject.sub, reason: 'security_event' }),
  'token-claims-change': (subject, { accounts }) => accounts.requestRefresh(sessionsOf(subject), 'security_event'),
  'assurance-level-change': (subject, { accounts }) => accounts.forgetAcr(sessionsOf(subject), 'security_event'),
  'account-disabled': (subject, { accounts }) => accounts.disable(subject.sub, 'security_event'),
  'account-enabled': (subject, { accounts }) => accounts.enable(subject.sub, 'security_event'),
  // Gone for good: disabled (so a login with a stale IdP session cannot come back) and every session ended.
  'account-purged': (subject, { accounts }) => accounts.disable(subject.sub, 'security_event'),
}

/** Applies one event; `ignored` for an event type or subject the gateway does not act on. */
export async function applySecurityEvent (event: SecurityEvent, effects: SecurityEventEffects): Promise<'accepted' | 'ignored'> {
  if (event.type === 'other' || event.subject.kind === 'unsupported') return 'ignored'
  await EFFECTS[event.type](event.subject, effects)
  return 'accepted'
}
