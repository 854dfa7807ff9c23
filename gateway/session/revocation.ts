/**
 * The one place sessions end, whoever ends them: the user (logout, "sign out
 * that device", "sign out other devices"), an operator (one session, a user,
 * everyone), the identity provider (back-channel logout), or the gateway
 * itself (a session used from elsewhere, a refresh token used by someone
 * else). One verb, `revoke({ …target, reason })`, as Duende's
 * `RevokeSessionsAsync(filter)`.
 *
 * Sessions ended from their own request are destroyed (logout) or turned
 * into tombstones (binding), and their refresh token is revoked at the IdP at
 * once: that request holds the cookie's key, so the tokens can be read.
 * Sessions ended from elsewhere become tombstones; their refresh token is
 * revoked when their browser next shows up (the session manager does that).
 * Ending every session of a user first bumps the user's epoch, then revokes
 * what the user's index holds: a login finishing meanwhile ends itself when it
 * sees the new epoch (sessions.ts `create`), and a session the index lost ends
 * at its next activity touch.
 */
import type { Audit } from '../observability/audit.js'
import type { ActiveSession, LoginIdentity } from './sessions.js'
import type { RevocationReason, SessionRecords, UserSessionIndex } from './store.js'

/** Which sessions end. */
export type RevocationTarget =
  /** The session of the current request. */
  | { session: ActiveSession }
  /** Whatever record a browser's cookie names, live or tombstone: a new login (of `replacedBy`) is replacing it. */
  | { cookie: string | undefined, replacedBy?: LoginIdentity }
  /** One session by its public handle; with `sub`, only if it is that user's (else nothing happens). */
  | { handle: string, sub?: string }
  /** Every session of a user; with `except`, all but that one (and no epoch bump). */
  | { sub: string, except?: string }
  /** Every session of one IdP session; with `sub`, only that user's. */
  | { sid: string, sub?: string }
  | { all: true }

/**
 * Why. Two reasons apply only to the current request's session and leave no tombstone:
 * `logout` (the user ends it; its refresh token is revoked at the IdP) and `refresh_rejected`
 * (the IdP refused its refresh token, so there is nothing left to revoke).
 */
export type RevocationRequest = RevocationTarget & { reason: RevocationReason | 'logout' | 'refresh_rejected' }

export interface Revocation {
  /** Ends the sessions named; resolves with how many ended. */
  revoke (request: RevocationRequest): Promise<number>
}

export interface RevocationOptions {
  records: Pick<SessionRecords, 'get' | 'revoke' | 'destroy'>
  index: Pick<UserSessionIndex, 'listByUser' | 'listBySid' | 'revokeByUser' | 'revokeAll' | 'bumpUserEpoch'>
  /** Tombstones a session from its own request and revokes its tokens now (the session manager's). */
  revokeOwn: (session: ActiveSession, reason: RevocationReason) => Promise<void>
  /** Ends the record a cookie names, revoking its tokens unless `replacedBy` carries on its grant (the session manager's). */
  forgetCookie: (rawCookie: string | undefined, replacedBy?: LoginIdentity) => Promise<void>
  /** Revokes a refresh token at the IdP, bounded in time; never throws. */
  revokeRefreshToken: (token: string | undefined) => Promise<void>
  audit: Audit
  /** How long an epoch bump must be remembered: the longest a session can live. */
  epochTtlMs: number
}

export function createRevocation (options: RevocationOptions): Revocation {
  const { records, index, audit } = options

  async function revokeOwn (session: ActiveSession, reason: RevocationRequest['reason']): Promise<number> {
    const { sub } = session.meta
    if (reason === 'refresh_rejected') {
      await records.destroy(session.handle)
    } else if (reason === 'logout') {
      await records.destroy(session.handle)
      await options.revokeRefreshToken(session.secrets.refreshToken)
      audit('logout', { reason: 'user', sub, session: session.handle })
    } else {
      await options.revokeOwn(session, reason)
      audit('session_revoked', { reason, scope: 'session', sub, session: session.handle })
    }
    return 1
  }

  async function revokeOne (handle: string, sub: string | undefined, reason: RevocationReason): Promise<number> {
    const target = await records.get(handle)
    // Another user's session is treated exactly like a missing one.
    if (!target || target.revoked || (sub !== undefined && target.meta.sub !== sub)) return 0
    if (!(await records.revoke(handle, reason))) return 0
    audit('session_revoked', { reason, scope: 'session', sub: target.meta.sub, session: handle })
    return 1
  }

  async function revokeUser (sub: string, except: string | undefined, reason: RevocationReason): Promise<number> {
    let revoked: number
    if (except === undefined) {
      // The epoch first, then the index: a login finishing meanwhile is then either in the index
      // when it is read or sees the new epoch once indexed, and ends itself (sessions.ts `create`).
      await index.bumpUserEpoch(sub, options.epochTtlMs)
      revoked = (await index.revokeByUser(sub, reason)).length
    } else {
      revoked = 0
      for (const session of await index.listByUser(sub)) {
        if (session.handle !== except && await records.revoke(session.handle, reason)) revoked += 1
      }
    }
    audit(reason === 'theft_suspected' ? 'theft_suspected' : 'session_revoked', {
      reason, scope: except === undefined ? 'user' : 'others', sub, revoked,
    })
    return revoked
  }

  async function revokeIdpSession (sid: string, sub: string | undefined, reason: RevocationReason): Promise<number> {
    let revoked = 0
    for (const handle of await index.listBySid(sid)) {
      const session = await records.get(handle)
      if (session && (sub === undefined || session.meta.sub === sub) && await records.revoke(handle, reason)) revoked += 1
    }
    audit('session_revoked', { reason, scope: 'idp_session', ...(sub !== undefined ? { sub } : {}), revoked })
    return revoked
  }

  return {
    async revoke (request) {
      const { reason } = request
      if ('session' in request) return revokeOwn(request.session, reason)
      if ('cookie' in request) {
        await options.forgetCookie(request.cookie, request.replacedBy)
        return 1
      }
      // Only the session's own request can end it without a tombstone.
      const stored: RevocationReason = reason === 'logout' || reason === 'refresh_rejected' ? 'user' : reason
      if ('handle' in request) return revokeOne(request.handle, request.sub, stored)
      if ('sid' in request) return revokeIdpSession(request.sid, request.sub, stored)
      if ('sub' in request) return revokeUser(request.sub, request.except, stored)
      const revoked = await index.revokeAll(stored)
      audit('session_revoked', { reason: stored, scope: 'all', revoked })
      return revoked
    },
  }
}
