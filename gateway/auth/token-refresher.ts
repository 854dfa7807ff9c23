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
 */
import { randomUUID } from 'node:crypto'
import { IdpUnavailable, SessionExpired } from '../errors.js'
import type { ActiveSession, SessionManager, SessionSecrets } from '../session/sessions.js'
import { OidcRejectedError, type OidcClient, type TokenResult } from './oidc-client.js'
import { profileClaims, rolesFrom } from './claims.js'

export type RefreshFailure = 'rejected' | 'idp_unavailable' | 'session_gone' | 'wait_timeout' | 'write_conflict'

/** Hooks for metrics and audit; the refresher itself knows neither. */
export interface RefreshObserver {
  attempt (): void
  success (durationMs: number): void
  failure (reason: RefreshFailure): void
  lockWait (): void
  /** The IdP rejected the newest refresh token we hold: revoked at the IdP, expired, or stolen and used. */
  grantRejected (session: ActiveSession, oauthError: OidcRejectedError['oauthError']): Promise<void>
}

export interface TokenRefresherOptions {
  sessions: SessionManager
  oidc: OidcClient
  skewSeconds: number
  rolesClaim: string
  observer: RefreshObserver
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
  const { sessions, oidc, observer } = options
  const now = options.now ?? Date.now
  const leaseMs = options.lockLeaseMs ?? 5000
  const maxWaitMs = options.maxWaitMs ?? 20_000
  const pollMs = options.pollIntervalMs ?? 25
  const waitForChange = options.waitForChange ?? ((_handle: string, ms: number) => sleep(ms))
  const skewMs = options.skewSeconds * 1000
  const inFlight = new Map<string, Promise<ActiveSession>>()

  const needsRefresh = (session: ActiveSession) => session.secrets.accessTokenExpiresAt - skewMs <= now()

  async function claimsAfterRefresh (current: ActiveSession, tokens: TokenResult): Promise<Record<string, unknown>> {
    if (tokens.idTokenClaims) return tokens.idTokenClaims
    try {
      return await oidc.userInfo(tokens.accessToken, current.meta.sub)
    } catch {
      // Keep the old claims rather than fail a request the new tokens can serve.
      return current.secrets.claims
    }
  }

  async function refreshHoldingLock (current: ActiveSession): Promise<ActiveSession> {
    const refreshToken = current.secrets.refreshToken
    if (!refreshToken) {
      await sessions.destroy(current.handle)
      observer.failure('rejected')
      throw new SessionExpired()
    }
    observer.attempt()
    const started = now()
    let tokens: TokenResult
    try {
      tokens = await oidc.refresh(refreshToken)
    } catch (error) {
      if (error instanceof OidcRejectedError) {
        observer.failure('rejected')
        await sessions.destroy(current.handle)
        await observer.grantRejected(current, error.oauthError)
        throw new SessionExpired({ cause: error })
      }
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
    }
    const saved = await sessions.saveSecrets(current, secrets)
    if (!saved) {
      // Someone wrote the session while we held the lock (our lease lapsed). Their write wins;
      // ours carried a refresh token that may now be stale, so it is dropped.
      observer.failure('write_conflict')
      const latest = await sessions.reload(current)
      if (latest && !needsRefresh(latest)) return latest
      throw new IdpUnavailable()
    }
    observer.success(now() - started)
    return saved
  }

  async function refreshAcrossInstances (session: ActiveSession): Promise<ActiveSession> {
    const lockName = `refresh:${session.handle}`
    const deadline = now() + maxWaitMs
    let waited = false
    for (;;) {
      const owner = randomUUID()
      if (await sessions.store.acquireLock(lockName, owner, leaseMs)) {
        const renewal = setInterval(() => {
          sessions.store.renewLock(lockName, owner, leaseMs).catch(() => {})
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
          await sessions.store.releaseLock(lockName, owner).catch(() => {})
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

  return {
    needsRefresh,
    ensureFresh (session) {
      if (!needsRefresh(session)) return Promise.resolve(session)
      let shared = inFlight.get(session.handle)
      if (!shared) {
        shared = refreshAcrossInstances(session).finally(() => inFlight.delete(session.handle))
        inFlight.set(session.handle, shared)
      }
      return shared
    },
  }
}
