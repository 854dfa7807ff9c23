/**
 * The session store: the one interface between the gateway and its shared state.
 *
 * It deals in opaque strings. Encryption, cookies and timeouts live above it
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
}

export interface StoredSession {
  /** Public handle: a one-way hash of the cookie's id, so it can never be used as a cookie. */
  handle: string
  /** Incremented on every replace; the compare-and-set guard against stale writers. */
  version: number
  meta: SessionMeta
  /** Encrypted tokens, claims and CSRF token; only the cookie's key opens it. */
  sealed: string
  lastSeenAt: number
}

export interface SessionStore {
  readonly kind: 'redis' | 'memory'
  /** Stores a new session at version 1 and indexes it under its user. */
  create (session: Omit<StoredSession, 'version'>, ttlMs: number): Promise<void>
  get (handle: string): Promise<StoredSession | undefined>
  /** Compare-and-set: writes only if the stored version is still `expectedVersion`. */
  replace (handle: string, expectedVersion: number, next: Pick<StoredSession, 'meta' | 'sealed'>, ttlMs: number): Promise<boolean>
  /** Records activity and extends the idle expiry, without touching the sealed data. */
  touch (handle: string, lastSeenAt: number, ttlMs: number): Promise<void>
  destroy (handle: string): Promise<boolean>
  listByUser (sub: string): Promise<StoredSession[]>
  /** Destroys every session of a user; returns the handles that were destroyed. */
  destroyByUser (sub: string): Promise<string[]>
  destroyAll (): Promise<number>

  /** Short-lived login transactions, readable once. */
  saveLoginState (state: string, value: string, ttlMs: number): Promise<void>
  takeLoginState (state: string): Promise<string | undefined>

  /** True the first time a key is claimed within its TTL (replay protection). */
  claimOnce (key: string, ttlMs: number): Promise<boolean>

  /** A lease owned by `owner`; renew and release succeed only for the owner. */
  acquireLock (name: string, owner: string, ttlMs: number): Promise<boolean>
  renewLock (name: string, owner: string, ttlMs: number): Promise<boolean>
  releaseLock (name: string, owner: string): Promise<void>

  ping (): Promise<void>
  close (): Promise<void>
}
