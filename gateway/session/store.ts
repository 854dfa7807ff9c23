/**
 * The session store: the one interface between the gateway and its shared state.
 *
 * It deals in opaque values. Encryption, cookies and timeouts live above it
 * (`sessions.ts`), so a store implementation never sees a token in the clear.
 * Every method either does what it says or throws `SessionStoreUnavailable`;
 * callers fail closed on that error.
 */

/** What the store keeps in the clear about a session: enough to list and revoke it. */
export interface SessionMeta {
  sub: string
  /** The identity provider's session id (`sid`), for back-channel logout. */
  sid?: string
  createdAt: number
  absoluteExpiresAt: number
  ip: string
  userAgent: string
  /** The user's revocation epoch when the session was created; a later epoch ends it. */
  epoch?: number
  /**
   * A native app's session: the RFC 7638 thumbprint of the app's key. Such a session is only ever
   * accepted from `Authorization: Session …` with a DPoP proof by that key, never from a cookie.
   */
  dpopJkt?: string
  /** The name a native app gave its device, shown in device lists in place of the User-Agent. */
  deviceName?: string
}

/** Why a session was ended by someone other than its own browser. */
export type RevocationReason = 'operator' | 'backchannel' | 'user' | 'binding' | 'theft_suspected' | 'epoch' | 'account_disabled' | 'security_event'

export interface StoredSession {
  /** Public handle: a one-way hash of the cookie's id, so it can never be used as a cookie. */
  handle: string
  /** Incremented on every replace; the compare-and-set guard against stale writers. */
  version: number
  meta: SessionMeta
  /** Encrypted tokens, claims and CSRF token, as bytes (`session-crypto.ts`); only the cookie's key opens it. */
  sealed: Buffer
  lastSeenAt: number
  /**
   * Set when the session was revoked from elsewhere. The record stays (a tombstone) until it
   * would have expired, so the browser's next visit can revoke its refresh token at the IdP and
   * its next login can force re-authentication; it is never usable as a session again.
   */
  revoked?: RevocationReason
  /**
   * How many times a refresh of the session's tokens was asked for from elsewhere (an operator, a
   * security event); the tokens record how many they answered (see `SessionMarks`).
   */
  refreshRequests?: number
  /** Set once the session's authentication level is no longer trusted: its `acr` is forgotten. */
  acrForgotten?: boolean
}

/**
 * One session's record: created at login, read per request, its sealed tokens replaced by
 * compare-and-set, ended by destroy (its own browser) or revoke (from elsewhere).
 */
export interface SessionRecords {
  /**
   * Stores a new session at version 1 and indexes it under its user (and IdP session); resolves
   * with the user's epoch as it stood once the session was in the user's index (read after the
   * index write, on the same node): how the session manager tells that "log out everywhere" ran
   * meanwhile and may have missed it.
   */
  create (session: Omit<StoredSession, 'version'>, ttlMs: number): Promise<number>
  get (handle: string): Promise<StoredSession | undefined>
  /** Compare-and-set: writes only if the stored version is still `expectedVersion`. */
  replace (handle: string, expectedVersion: number, next: Pick<StoredSession, 'meta' | 'sealed'>, ttlMs: number): Promise<boolean>
  /**
   * Records activity and extends the idle expiry, without touching the sealed data; false when there
   * is no live session (it expired or was revoked since it was read).
   */
  touch (handle: string, lastSeenAt: number, ttlMs: number): Promise<boolean>
  destroy (handle: string): Promise<boolean>
  /** Turns a live session into a tombstone; false when there was no live session. */
  revoke (handle: string, reason: RevocationReason): Promise<boolean>
}

/** Sessions found by who they belong to: a user's devices, an IdP session, everyone. */
export interface UserSessionIndex {
  /** Live (not revoked) sessions of a user. */
  listByUser (sub: string): Promise<StoredSession[]>
  /** Handles of live sessions that carry this IdP session id. */
  listBySid (sid: string): Promise<string[]>
  /**
   * Revokes every live session of a user (those in the user's index); returns the handles revoked.
   * A session indexed meanwhile stays in the index (it is only ever removed handle by handle).
   */
  revokeByUser (sub: string, reason: RevocationReason): Promise<string[]>
  /** Revokes every live session; returns how many. */
  revokeAll (reason: RevocationReason): Promise<number>
  /** Deletes every session record, tombstones included (tests, resets). */
  destroyAll (): Promise<number>
  /** The user's revocation epoch (0 when never bumped). */
  userEpoch (sub: string): Promise<number>
  /** Increments the epoch in one write: every session created before it is over. */
  bumpUserEpoch (sub: string, ttlMs: number): Promise<number>
}

/**
 * Marks put on a live session from elsewhere, where only its record can be reached (its tokens
 * are sealed under its browser's key). The record carries them, so the read every request
 * already makes returns them at no extra cost; every instance then applies them at the session's
 * next use. Each mark is announced on the invalidation channel, so cached copies are dropped.
 * Neither changes the record's version: a refresh in flight still stores its tokens.
 */
export interface SessionMarks {
  /** Counts one more refresh request on a live session; false when there is no live session. */
  requestRefresh (handle: string): Promise<boolean>
  /** Makes a live session forget its `acr` for good; false when there is no live session. */
  forgetAcr (handle: string): Promise<boolean>
}

/** Whether a user may sign in, the same on every instance. */
export interface AccountStatuses {
  isDisabled (sub: string): Promise<boolean>
  /** Disabled until set back; never expires by itself. */
  setDisabled (sub: string, disabled: boolean): Promise<void>
}

/** Short-lived login transactions between /bff/login and /bff/callback, readable once. */
export interface LoginStates {
  saveLoginState (state: string, value: string, ttlMs: number): Promise<void>
  takeLoginState (state: string): Promise<string | undefined>
}

/**
 * Native sign-ins between /bff/callback and POST /bff/native/session (RFC 8252 handoff), readable
 * once. Keyed by a hash of the handoff code; the value is sealed by the caller.
 */
export interface Handoffs {
  saveHandoff (id: string, value: string, ttlMs: number): Promise<void>
  takeHandoff (id: string): Promise<string | undefined>
}

/** Replay protection shared by every instance: JWT ids, once-only jobs. */
export interface ReplayClaims {
  /** True the first time `key` (from `keys.ts`) is claimed within its TTL. */
  claimOnce (key: string, ttlMs: number): Promise<boolean>
}

/** Leases owned by one caller at a time (the refresh lock); renew and release succeed only for the owner. */
export interface Leases {
  acquireLock (key: string, owner: string, ttlMs: number): Promise<boolean>
  renewLock (key: string, owner: string, ttlMs: number): Promise<boolean>
  releaseLock (key: string, owner: string): Promise<void>
}

/** What operators and the process see of the store itself. */
export interface StoreHealth {
  readonly kind: 'redis' | 'memory'
  /** Session records stored (live sessions and unexpired tombstones), for the metrics gauge. */
  countSessions (): Promise<number>
  ping (): Promise<void>
  close (): Promise<void>
}

/**
 * A whole store implementation (memory or Redis). Only the session layer holds one; every
 * other part of the gateway is handed the one role it needs.
 */
export interface SessionStore extends SessionRecords, UserSessionIndex, SessionMarks, AccountStatuses, LoginStates, Handoffs, ReplayClaims, Leases, StoreHealth {}
