/**
 * Sessions as the rest of the gateway sees them: created at login, loaded from
 * the cookie, their tokens replaced by compare-and-set, ended by handle.
 *
 * Timeouts are enforced here, not only by the store's TTL, so a session past
 * its idle or absolute limit is refused even if a store kept it a little longer.
 */
import { randomBytes } from 'node:crypto'
import type { SessionCrypto } from './session-crypto.js'
import { keyFor } from './keys.js'
import { byLastSeen } from './session-view.js'
import { keptUserAgent } from './session-binding.js'
import type { SessionCache } from './session-cache.js'
import { decodeSessionCookie, encodeSessionCookie, newSessionCookieValue, type SessionCookieValue } from './session-cookie.js'
import type { RevocationReason, SessionMeta, SessionStore, StoredSession } from './store.js'
import type { ActiveSession, SessionSecrets } from './active-session.js'

export type { ActiveSession, SessionSecrets } from './active-session.js'

/** Who a new login signed in, as its ID token says. */
export type LoginIdentity = Pick<SessionMeta, 'sub' | 'sid'>

/**
 * Whether a replaced session and the login replacing it came from one IdP session. Their tokens
 * can then belong to one grant (oidc-provider keeps one grant per IdP session and client, and
 * revoking any of its refresh tokens ends the grant), so revoking the old refresh token would end
 * the new one too: a step-up or repeated login in one browser would sign the user out at the next
 * refresh. Without a `sid` on either side it cannot be told apart, and the new session is the one
 * to keep.
 */
export function sharesIdpSession (replaced: SessionMeta, replacedBy: LoginIdentity): boolean {
  return replaced.sub === replacedBy.sub && (replaced.sid === undefined || replacedBy.sid === undefined || replaced.sid === replacedBy.sid)
}

/** What `touch` came to. */
export type Touched =
  /** Recorded too recently: nothing was written. */
  | { outcome: 'not_due' }
  /** Activity recorded: re-send the cookie with this Max-Age, so it never outlives the session. */
  | { outcome: 'recorded', maxAgeSeconds: number }
  /**
   * Not to be served: revoked or expired since the request read it, or the user's sessions were all
   * ended after this one was made (it is now a tombstone).
   */
  | { outcome: 'ended' }

export interface NewSession {
  session: ActiveSession
  /** The signed cookie value to send to the browser. */
  cookieValue: string
  maxAgeSeconds: number
}

export interface SessionManagerOptions {
  store: SessionStore
  crypto: SessionCrypto
  idleTimeoutSeconds: number
  absoluteTimeoutSeconds: number
  /**
   * Called once per revoked session when its own browser shows up again (we then hold the
   * cookie's key and can read its tokens): the place to revoke its refresh token at the IdP.
   */
  onRevokedSessionSeen?: (secrets: SessionSecrets, meta: SessionMeta, reason: RevocationReason) => Promise<void>
  /** Opened sessions kept in process; only consulted while its invalidation channel is up. */
  cache?: SessionCache
  now?: () => number
}

export interface SessionManager {
  create (identity: Omit<SessionMeta, 'createdAt' | 'absoluteExpiresAt' | 'epoch'>, secrets: Omit<SessionSecrets, 'csrfToken'>): Promise<NewSession>
  /**
   * The live session named by a raw cookie value, or undefined (forged, expired, ended). Answers
   * at once, without a promise, when it needs no I/O (a cookie verified before, a trusted cached
   * session); otherwise reads the store.
   */
  load (rawCookie: string | undefined): ActiveSession | undefined | Promise<ActiveSession | undefined>
  /** The current stored state of a session already loaded in this request. */
  reload (session: ActiveSession): Promise<ActiveSession | undefined>
  /** Compare-and-set; undefined when another writer got there first (re-read and retry). */
  saveSecrets (session: ActiveSession, secrets: SessionSecrets): Promise<ActiveSession | undefined>
  /** Whether activity is due to be recorded (at most every tenth of the idle window). */
  touchDue (session: ActiveSession): boolean
  /**
   * Records activity when it is due, extending the idle expiry, and checks the user's epoch then
   * (so a session "log out everywhere" missed ends within one touch interval of its use).
   */
  touch (session: ActiveSession): Promise<Touched>
  /** Ends a session from its own request (binding, theft): tombstone it and revoke its tokens now. */
  revoke (session: ActiveSession, reason: RevocationReason): Promise<void>
  /** Why the session this cookie named was revoked from elsewhere, if it was. */
  revocationOf (rawCookie: string | undefined): Promise<RevocationReason | undefined>
  /**
   * Ends whatever record the cookie names, live or tombstone (a new login replaces it), revoking its
   * tokens unless the new login came through the same IdP session (see `sharesIdpSession`).
   */
  forget (rawCookie: string | undefined, replacedBy?: LoginIdentity): Promise<void>
  cookieMaxAgeSeconds (session: Pick<ActiveSession, 'meta'>): number
  /** A user's live sessions (their devices), newest activity first. */
  listByUser (sub: string): Promise<StoredSession[]>
  /** Resolves while the store answers. */
  ping (): Promise<void>
}

/** What the rest of the gateway may do with sessions: every way one ends goes through `revocation.ts`. */
export type SessionAccess = Omit<SessionManager, 'revoke' | 'forget'>

/**
 * At most this many verified cookie values are remembered per instance (and at least the half
 * most recently used). About 0.7 KB each with the data key derived for them: 7 MB at most,
 * whatever the number of users.
 */
export const MAX_VERIFIED_COOKIES = 10_000

/** What sessions sealed by older versions may still carry, though nothing reads it any more. */
interface RetiredFields {
  idToken?: string
}

// Dropped when such a session is opened, so its next re-seal (it is stale: see `isStale`) leaves them out.
function withoutRetiredFields (secrets: SessionSecrets & RetiredFields): SessionSecrets {
  if (secrets.idToken === undefined) return secrets
  const { idToken: _retired, ...current } = secrets
  return current
}

export function createSessionManager (options: SessionManagerOptions): SessionManager {
  const { store, crypto } = options
  const now = options.now ?? Date.now
  const idleMs = options.idleTimeoutSeconds * 1000
  const absoluteMs = options.absoluteTimeoutSeconds * 1000
  // Touching on every request would be a write per request; a tenth of the idle window
  // (at most a minute) keeps idle expiry accurate to within that slice.
  const touchIntervalMs = Math.min(60_000, Math.floor(idleMs / 10))

  // A cookie string verified once is remembered (bounded), with or without a session cache: the
  // signature check (HMAC) and handle hash are then skipped, and the decoded value's key is the
  // very Buffer the session crypto remembers its derived data key by, so a request that misses
  // the session cache does one AES-GCM decryption and no key derivation.
  // Two generations of half the bound each: when the young one is full, the old one is dropped
  // whole and the young one takes its place; a cookie found in the old one moves to the young.
  // O(1) per cookie, with no walk over a Map (evicting a Map's oldest entries one by one leaves
  // holes that every later `keys().next()` walks again).
  let youngCookies = new Map<string, SessionCookieValue>()
  let oldCookies = new Map<string, SessionCookieValue>()
  function rememberVerified (raw: string, cookie: SessionCookieValue): void {
    if (youngCookies.size >= MAX_VERIFIED_COOKIES / 2) {
      oldCookies = youngCookies
      youngCookies = new Map()
    }
    youngCookies.set(raw, cookie)
  }
  function decodeVerified (raw: string | undefined): SessionCookieValue | undefined {
    if (raw === undefined) return undefined
    const young = youngCookies.get(raw)
    if (young) return young
    const cookie = oldCookies.get(raw) ?? decodeSessionCookie(raw, crypto)
    if (cookie) rememberVerified(raw, cookie)
    return cookie
  }

  const looksLive = (session: ActiveSession, at: number) => session.meta.absoluteExpiresAt > at && session.lastSeenAt + idleMs > at
  const ttlMs = (meta: SessionMeta, at: number) => Math.max(1, Math.min(idleMs, meta.absoluteExpiresAt - at))

  function open (stored: StoredSession, cookie: SessionCookieValue): ActiveSession | undefined {
    let secrets: SessionSecrets
    try {
      secrets = withoutRetiredFields(JSON.parse(crypto.unseal(stored.sealed, cookie.key, stored.handle)) as SessionSecrets & RetiredFields)
    } catch {
      return undefined
    }
    return {
      handle: stored.handle,
      version: stored.version,
      meta: stored.meta,
      lastSeenAt: stored.lastSeenAt,
      idleExpiresAt: Math.min(stored.lastSeenAt + idleMs, stored.meta.absoluteExpiresAt),
      secrets,
      ...(stored.refreshRequests ? { refreshRequests: stored.refreshRequests } : {}),
      ...(stored.acrForgotten ? { acrForgotten: true } : {}),
      cookie,
    }
  }

  // The refresh token is revoked at most once per session, whichever instance sees it first.
  async function revokeTokensOnce (stored: StoredSession, cookie: SessionCookieValue, reason: RevocationReason): Promise<void> {
    if (!options.onRevokedSessionSeen) return
    const ttl = Math.max(1, stored.meta.absoluteExpiresAt - now())
    if (!(await store.claimOnce(keyFor.tokensRevoked(stored.handle), ttl))) return
    const session = open(stored, cookie)
    if (session) await options.onRevokedSessionSeen(session.secrets, stored.meta, reason)
  }

  /** Tombstones a session from its own request and revokes its tokens now (we hold its key). */
  async function endOwn (session: ActiveSession, reason: RevocationReason): Promise<void> {
    await store.revoke(session.handle, reason)
    const stored = await store.get(session.handle)
    if (stored) await revokeTokensOnce(stored, session.cookie, reason)
  }

  async function read (cookie: SessionCookieValue): Promise<ActiveSession | undefined> {
    const stored = await store.get(cookie.handle)
    if (!stored) return undefined
    const at = now()
    if (stored.meta.absoluteExpiresAt <= at || stored.lastSeenAt + idleMs <= at) {
      await store.destroy(stored.handle)
      return undefined
    }
    if (stored.revoked) {
      await revokeTokensOnce(stored, cookie, stored.revoked)
      return undefined
    }
    // The user's epoch is not read here: a read is one command (HGETALL), in one Cluster slot.
    // "Log this user out everywhere" reaches every session through the user's index, which no
    // session can miss (see `create`); the epoch is looked at again only at the activity touch.
    const session = open(stored, cookie)
    if (session && crypto.isStale(stored.sealed)) {
      // Re-encrypt under the newest secret so an old one can be retired without logging anyone out.
      return (await manager.saveSecrets(session, session.secrets)) ?? session
    }
    return session
  }

  const manager: SessionManager = {
    async create (identity, secrets) {
      const cookie = newSessionCookieValue()
      const at = now()
      const epoch = await store.userEpoch(identity.sub)
      const meta: SessionMeta = { ...identity, userAgent: keptUserAgent(identity.userAgent), createdAt: at, absoluteExpiresAt: at + absoluteMs, epoch }
      const full: SessionSecrets = { ...secrets, csrfToken: randomBytes(32).toString('base64url') }
      const sealed = crypto.seal(JSON.stringify(full), cookie.key, cookie.handle)
      const epochOnceIndexed = await store.create({ handle: cookie.handle, meta, sealed, lastSeenAt: at }, ttlMs(meta, at))
      const session: ActiveSession = {
        handle: cookie.handle,
        version: 1,
        meta,
        lastSeenAt: at,
        idleExpiresAt: Math.min(at + idleMs, meta.absoluteExpiresAt),
        secrets: full,
        cookie,
      }
      // "Log this user out everywhere" (revocation.ts) bumps the user's epoch FIRST, then revokes
      // every session in the user's index. The store answers with the epoch read right after this
      // session was indexed. The epoch and the index share the `{u:<sub>}` hash tag, so one Redis
      // node (one thread, or one process for the memory store) orders the bump, the revoker's
      // index read, our index write and our epoch read. Either our epoch read came before the
      // bump, and then so did our index write, which the revoker's index read (after its bump)
      // sees: it revokes this session; or it came after the bump and shows it, and we tombstone
      // the session here. Either way no session created before the bump outlives it, and no
      // request has to read the epoch to be sure of that.
      if (epochOnceIndexed > epoch) await endOwn(session, 'epoch')
      const cookieValue = encodeSessionCookie(cookie, crypto)
      // Its first request skips the signature check and the key derivation (seal derived it).
      rememberVerified(cookieValue, cookie)
      return { session, cookieValue, maxAgeSeconds: manager.cookieMaxAgeSeconds(session) }
    },
    load (rawCookie) {
      const cookie = decodeVerified(rawCookie)
      if (!cookie) return undefined
      const { cache } = options
      const at = now()
      const cached = cache?.get(cookie.handle, cookie.key, at)
      // A cached copy that looks expired may only be stale (another instance saw activity): ask the store.
      if (cached && looksLive(cached, at)) return cached
      const generation = cache?.generation ?? 0
      return read(cookie).then((session) => {
        if (session && cache) cache.set(session, generation)
        return session
      })
    },
    async reload (session) {
      return read(session.cookie)
    },
    async saveSecrets (session, secrets) {
      const sealed = crypto.seal(JSON.stringify(secrets), session.cookie.key, session.handle)
      const written = await store.replace(session.handle, session.version, { meta: session.meta, sealed }, ttlMs(session.meta, now()))
      return written ? { ...session, version: session.version + 1, secrets } : undefined
    },
    touchDue (session) {
      return now() - session.lastSeenAt >= touchIntervalMs
    },
    async touch (session) {
      const at = now()
      const previous = session.lastSeenAt
      if (at - previous < touchIntervalMs) return { outcome: 'not_due' }
      // Claimed before the round trip: the requests a cached session serves meanwhile find it not
      // due, so one touch goes out, not one per request in flight. Given back if the store fails.
      session.lastSeenAt = at
      let live: boolean
      let userEpoch: number
      try {
        // The user's epoch beside the touch (another slot, so sent alongside, not after it): a
        // session the user's index lost (Redis lost the write in a failover, or an operator deleted
        // the key) is still ended by "log out everywhere", at its first touch after it.
        [live, userEpoch] = await Promise.all([store.touch(session.handle, at, ttlMs(session.meta, at)), store.userEpoch(session.meta.sub)])
      } catch (error) {
        session.lastSeenAt = previous
        throw error
      }
      // Revoked or expired since this request read it (from the store or the cache): not served.
      if (!live) return { outcome: 'ended' }
      if ((session.meta.epoch ?? 0) < userEpoch) {
        await endOwn(session, 'epoch')
        return { outcome: 'ended' }
      }
      session.idleExpiresAt = Math.min(at + idleMs, session.meta.absoluteExpiresAt)
      return { outcome: 'recorded', maxAgeSeconds: manager.cookieMaxAgeSeconds(session) }
    },
    revoke: endOwn,
    async revocationOf (rawCookie) {
      const cookie = decodeSessionCookie(rawCookie, crypto)
      return cookie ? (await store.get(cookie.handle))?.revoked : undefined
    },
    async forget (rawCookie, replacedBy) {
      const cookie = decodeSessionCookie(rawCookie, crypto)
      if (!cookie) return
      const stored = await store.get(cookie.handle)
      if (!stored) return
      // The replaced session's grant would otherwise live on at the IdP until it expired; unless the
      // new session carries on that very grant.
      if (!replacedBy || !sharesIdpSession(stored.meta, replacedBy)) await revokeTokensOnce(stored, cookie, stored.revoked ?? 'user')
      await store.destroy(cookie.handle)
    },
    cookieMaxAgeSeconds (session) {
      return Math.max(1, Math.floor(ttlMs(session.meta, now()) / 1000))
    },
    async listByUser (sub) {
      return (await store.listByUser(sub)).sort(byLastSeen)
    },
    ping () {
      return store.ping()
    },
  }
  return manager
}
