/**
 * What changes about a user from outside their sessions, as the operator
 * (admin API, CLI) and the identity provider's security events (Shared
 * Signals) ask for it: the account disabled or enabled, and the user's
 * sessions told to refresh their tokens or to forget their authentication
 * level. Sessions end through the revocation service; marks go on the
 * session records (`SessionMarks`), where every instance sees them at the
 * session's next use.
 */
import type { Audit } from '../observability/audit.js'
import type { Revocation } from './revocation.js'
import type { AccountStatuses, SessionMarks, SessionRecords, UserSessionIndex } from './store.js'

export type AccountStatus = 'active' | 'disabled'

/** Who asked: an operator, or a security event from the identity provider or a risk engine. */
export type AccountChangeSource = 'operator' | 'security_event'

/** A user's sessions; with `sid`, only those of that IdP session. */
export interface AccountSessions {
  sub: string
  sid?: string
}

export interface AccountView {
  sub: string
  status: AccountStatus
  /** Live sessions of the user. */
  sessions: number
}

export interface Accounts {
  view (sub: string): Promise<AccountView>
  isDisabled (sub: string): Promise<boolean>
  /** Refuses the user's logins from now on and ends every session of theirs; resolves with how many ended. */
  disable (sub: string, source: AccountChangeSource): Promise<number>
  enable (sub: string, source: AccountChangeSource): Promise<void>
  /** Each session refreshes its tokens before its next use; resolves with how many were marked. */
  requestRefresh (target: AccountSessions, source: AccountChangeSource): Promise<number>
  /** Each session forgets its `acr` (routes that require one ask for a step-up); resolves with how many. */
  forgetAcr (target: AccountSessions, source: AccountChangeSource): Promise<number>
}

export interface AccountsOptions {
  statuses: AccountStatuses
  marks: SessionMarks
  records: Pick<SessionRecords, 'get'>
  index: Pick<UserSessionIndex, 'listByUser' | 'listBySid'>
  revocation: Revocation
  audit: Audit
  /** Metrics hook: an account's status was set. */
  statusChanged?: (status: AccountStatus, source: AccountChangeSource) => void
}

export function createAccounts (options: AccountsOptions): Accounts {
  const { statuses, marks, records, index, revocation, audit } = options

  async function handlesOf (target: AccountSessions): Promise<string[]> {
    if (target.sid === undefined) return (await index.listByUser(target.sub)).map(session => session.handle)
    const handles: string[] = []
    for (const handle of await index.listBySid(target.sid)) {
      // An IdP session id names one user's session; another user's is treated as not there.
      if ((await records.get(handle))?.meta.sub === target.sub) handles.push(handle)
    }
    return handles
  }

  async function markEach (target: AccountSessions, mark: (handle: string) => Promise<boolean>): Promise<number> {
    let marked = 0
    for (const handle of await handlesOf(target)) if (await mark(handle)) marked += 1
    return marked
  }

  return {
    async view (sub) {
      const [disabled, sessions] = await Promise.all([statuses.isDisabled(sub), index.listByUser(sub)])
      return { sub, status: disabled ? 'disabled' : 'active', sessions: sessions.length }
    },
    isDisabled: (sub) => statuses.isDisabled(sub),
    async disable (sub, source) {
      // Refused first, ended second: a login finishing in between is caught by the callback's second look.
      await statuses.setDisabled(sub, true)
      const revoked = await revocation.revoke({ sub, reason: 'account_disabled' })
      audit('account_status_changed', { reason: source, sub, status: 'disabled', revoked })
      options.statusChanged?.('disabled', source)
      return revoked
    },
    async enable (sub, source) {
      await statuses.setDisabled(sub, false)
      audit('account_status_changed', { reason: source, sub, status: 'active' })
      options.statusChanged?.('active', source)
    },
    async requestRefresh (target, source) {
      const sessions = await markEach(target, marks.requestRefresh)
      audit('refresh_requested', { reason: source, sub: target.sub, ...(target.sid !== undefined ? { scope: 'idp_session' } : {}), sessions })
      return sessions
    },
    async forgetAcr (target, source) {
      const sessions = await markEach(target, marks.forgetAcr)
      audit('acr_forgotten', { reason: source, sub: target.sub, ...(target.sid !== undefined ? { scope: 'idp_session' } : {}), sessions })
      return sessions
    },
  }
}
