/**
 * Keeps a session's access token fresh, with exactly one call to the token
 * endpoint per session however many requests (on however many instances)
 * notice the expiry at once.
 *
 * Identity providers that rotate refresh tokens revoke the whole grant when an
 * old one comes back, so two concurrent refreshes of one session would sign the
 * user out. Three layers prevent that:
 *  1. in process, concurrent callers share one promise;
 *  2. across instances, a lease-based lock in the store, renewed while the IdP
 *     call runs, and a re-read after winning it (another instance may have
 *     refreshed already); losers wait for the winner's tokens to land, woken by
 *     the invalidation channel when there is one, re-reading the session at least every `pollIntervalMs`;
 *  3. the write is a compare-and-set on the session's version, so a writer that
 *     lost its lease can never put an old refresh token back.
 *
 * A session can also end while the IdP is refreshing it (logout, operator, back-channel or
 * device revocation, expiry). Such a refresh must neither look like theft when the IdP then
 * refuses the revoked token, nor leave a live refresh token behind when the IdP accepted it.
 */
import { randomUUID } from 'node:crypto'
import { IdpUnavailable, SessionExpired } from '../errors.js'
import { keyFor } from '../session/keys.js'
import type { Leases } from '../session/store.js'
import type { Revocation } from '../session/revocation.js'
import type { ActiveSession, SessionAccess, SessionSecrets } from '../session/sessions.js'
import { OidcRejectedError, type OidcClient, type TokenResult } from './oidc-client.js'
import { profileClaims, rolesFrom } from './claims.js'

export type RefreshFailure = 'rejected' | 'idp_unavailable' | 'session_gone' | 'wait_timeout' | 'write_conflict'

/** Hooks for metrics and audit; the refresher itself knows neither. */
export interface RefreshObserver {
  attempt (): void
  success (durationMs: number): void
  failure (reason: RefreshFailure): void
  lockWait (): void
  /**
   * The IdP rejected the refresh token that the session, still live after the refusal, holds as
   * its newest: revoked at the IdP, expired, or stolen and used. Every session of the user is
   * then ended as suspected theft. Never called for a session that ended during the refresh
   * (its own logout or revocation revoked that token).
   */
  grantRejected (session: ActiveSession, oauthError: OidcRejectedError['oauthError']): void
}

export interface TokenRefresherOptions {
  sessions: SessionAccess
  /** How sessions end: a refused grant ends its session, and suspected theft all of the user's. */
  revocation: Revocation
  /** The cross-instance refresh lock. */
  leases: Leases
  oidc: OidcClient
  skewSeconds: number
  rolesClaim: string
  observer: RefreshObserver
  /**
   * Revokes the secrets' refresh token at the IdP (RFC 7009) within a bounded wait, and never
   * throws: used for the token a refresh obtained for a session that ended meanwhile.
   */
  revokeRefreshToken: (secrets: SessionSecrets) => Promise<void>
  lockLeaseMs?: number
  /** How long a request waits for another instance's refresh before giving up with 502. */
  maxWaitMs?: number
  pollIntervalMs?: number
  /** Waits up to `ms` for news of a session's change (the invalidation channel); a plain sleep without one. */
  waitForChange?: (handle: string, ms: number) => Promise<void>
  now?: () => number
}

export interface TokenRefresher {
  needsRefresh (session: ActiveSession): boolean
  /** The session with a usable access token; throws SessionExpired or IdpUnavailable. */
  ensureFresh (session: ActiveSession): Promise<ActiveSession>
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export function createTokenRefresher (options: TokenRefresherOptions): TokenRefresher {
  const { sessions, leases, revocation, oidc, observer } = options
  const now = options.now ?? Date.now
  const leaseMs = options.lockLeaseMs ?? 5000
  const maxWaitMs = options.maxWaitMs ?? 20_000
  const pollMs = options.pollIntervalMs ?? 25
  const waitForChange = options.waitForChange ?? ((_handle: string, ms: number) => sleep(ms))
  const skewMs = options.skewSeconds * 1000
  const inFlight = new Map<string, Promise<ActiveSession>>()

  // A refresh asked for (an operator, a security event) after these tokens were obtained is due too.
  const refreshRequested = (session: ActiveSession) => (session.refreshRequests ?? 0) > (session.secrets.refreshRequestsSeen ?? 0)
  const needsRefresh = (session: ActiveSession) => session.secrets.accessTokenExpiresAt - skewMs <= now() || refreshRequested(session)

  async function claimsAfterRefresh (current: ActiveSession, tokens: TokenResult): Promise<Record<string, unknown>> {
    if (tokens.idTokenClaims) return tokens.idTokenClaims
    try {
      return await oidc.userInfo(tokens.accessToken, current.meta.sub)
    } catch {
      // Keep the old claims rather than fail a request the new tokens can serve.
      return current.secrets.claims
    }
  }

  /**
   * The IdP refused `refreshToken`. That is suspicious only if the session, read again now, is
   * still live and still holds that token as its newest: a session that ended during the refresh
   * had the token revoked by its own logout or revocation, and one that holds a newer token was
   * refreshed by someone else while ours was in flight.
   */
  async function afterRefusal (current: ActiveSession, refreshToken: string, refusal: OidcRejectedError): Promise<ActiveSession> {
    const latest = await sessions.reload(current)
    if (!latest) {
      observer.failure('session_gone')
      throw new SessionExpired({ cause: refusal })
    }
    if (latest.secrets.refreshToken !== refreshToken) {
      observer.failure('write_conflict')
      if (!needsRefresh(latest)) return latest
      throw new IdpUnavailable({ cause: refusal })
    }
    observer.failure('rejected')
    await revocation.revoke({ session: current, reason: 'refresh_rejected' })
    // We held the newest refresh token and no refresh of ours was in flight, yet the IdP refused it:
    // revoked at the IdP, or used by someone else (theft). Either way the user's sessions are suspect.
    observer.grantRejected(current, refusal.oauthError)
    await revocation.revoke({ sub: current.meta.sub, reason: 'theft_suspected' })
    throw new SessionExpired({ cause: refusal })
  }

  async function refreshHoldingLock (current: ActiveSession): Promise<ActiveSession> {
    const refreshToken = current.secrets.refreshToken
    if (!refreshToken) {
      await revocation.revoke({ session: current, reason: 'refresh_rejected' })
      observer.failure('rejected')
      throw new SessionExpired()
    }
    observer.attempt()
    const started = now()
    let tokens: TokenResult
    try {
      tokens = await oidc.refresh(refreshToken)
    } catch (error) {
      if (error instanceof OidcRejectedError) return afterRefusal(current, refreshToken, error)
      // Not the IdP's verdict on the grant: it could not be reached, or its answer failed our checks
      // (OidcResponseInvalidError). Either way the session is kept.
      observer.failure('idp_unavailable')
      throw error instanceof IdpUnavailable ? error : new IdpUnavailable({ cause: error })
    }
    const claims = { ...(await claimsAfterRefresh(current, tokens)) }
    const secrets: SessionSecrets = {
      ...current.secrets,
      accessToken: tokens.accessToken,
      // An IdP that does not rotate answers without a refresh token: keep the one we have.
      refreshToken: tokens.refreshToken ?? refreshToken,
      idToken: tokens.idToken ?? current.secrets.idToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
      claims: profileClaims(claims),
      roles: rolesFrom(claims, options.rolesClaim),
      // As read under the lock, before asking the IdP: a request made after that read stays due.
      refreshRequestsSeen: current.refreshRequests ?? 0,
    }
    const saved = await sessions.saveSecrets(current, secrets)
    if (!saved) {
      const latest = await sessions.reload(current)
      if (!latest) {
        // The session ended while the IdP was refreshing it: the refresh token just issued is
        // held by nobody, and would stay usable at the IdP until it expired.
        observer.failure('session_gone')
        await options.revokeRefreshToken(secrets)
        throw new SessionExpired()
      }
      // Someone wrote the session while we held the lock (our lease lapsed). Their write wins;
      // ours carried a refresh token that may now be stale, so it is dropped. It is not revoked:
      // at an IdP that revokes the whole grant, that would end the live session's token too.
      observer.failure('write_conflict')
      if (!needsRefresh(latest)) return latest
      throw new IdpUnavailable()
    }
    observer.success(now() - started)
    return saved
  }

  async function refreshAcrossInstances (session: ActiveSession): Promise<ActiveSession> {
    const lockName = keyFor.refreshLock(session.handle)
    const deadline = now() + maxWaitMs
    let waited = false
    for (;;) {
      const owner = randomUUID()
      if (await leases.acquireLock(lockName, owner, leaseMs)) {
        const renewal = setInterval(() => {
          leases.renewLock(lockName, owner, leaseMs).catch(() => {})
        }, Math.max(50, Math.floor(leaseMs / 3)))
        try {
          const current = await sessions.reload(session)
          if (!current) {
            observer.failure('session_gone')
            throw new SessionExpired()
          }
          if (!needsRefresh(current)) return current
          return await refreshHoldingLock(current)
        } finally {
          clearInterval(renewal)
          await leases.releaseLock(lockName, owner).catch(() => {})
        }
      }
      if (!waited) {
        observer.lockWait()
        waited = true
      }
      await waitForChange(session.handle, pollMs)
      const current = await sessions.reload(session)
      if (!current) {
        observer.failure('session_gone')
        throw new SessionExpired()
      }
      if (!needsRefresh(current)) return current
      if (now() > deadline) {
        observer.failure('wait_timeout')
        throw new IdpUnavailable()
      }
    }
  }

  function ensureFresh (session: ActiveSession): Promise<ActiveSession> {
    if (!needsRefresh(session)) return Promise.resolve(session)
    let shared = inFlight.get(session.handle)
    if (!shared) {
      shared = refreshAcrossInstances(session).finally(() => inFlight.delete(session.handle))
      inFlight.set(session.handle, shared)
    }
    return shared.then((fresh) => {
      // A refresh already in flight when this caller saw a newer request answers an older one: go again.
      const requests = session.refreshRequests ?? 0
      return requests > (fresh.secrets.refreshRequestsSeen ?? 0) ? ensureFresh({ ...fresh, refreshRequests: requests }) : fresh
    })
  }

  return { needsRefresh, ensureFresh }
}
