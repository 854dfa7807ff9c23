/**
 * Keeps a session's own access token fresh, and spends its refresh token for
 * whoever needs a token of it (its own, or one narrowed to an API:
 * api-tokens.ts), with exactly one call to the token endpoint per session and
 * token however many requests (on however many instances) notice the expiry
 * at once.
 *
 * Identity providers that rotate refresh tokens revoke the whole grant when an
 * old one comes back, so two concurrent refreshes of one session would sign the
 * user out. Every spending of the refresh token therefore runs holding the
 * session's one refresh lock (refresh-lock.ts: shared in process, a lease
 * across instances, a re-read after winning it) and writes by compare-and-set
 * on the session's version, so a writer that lost its lease can never put an
 * old refresh token back.
 *
 * A session can also end while the IdP is refreshing it (logout, operator, back-channel or
 * device revocation, expiry). Such a refresh must neither look like theft when the IdP then
 * refuses the revoked token, nor leave a live refresh token behind when the IdP accepted it.
 */
import { IdpUnavailable, SessionExpired } from '../errors.js'
import type { Leases } from '../session/store.js'
import type { Revocation } from '../session/revocation.js'
import type { ActiveSession, SessionAccess, SessionSecrets } from '../session/sessions.js'
import { OidcRejectedError, type OidcClient, type TokenRequest, type TokenResult } from './oidc-client.js'
import { profileClaims, rolesFrom } from './claims.js'
import { createDpopKeyring, generateDpopKey, type DpopKeyring } from './dpop-key.js'
import { createSessionLock, type SessionLock } from './refresh-lock.js'

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
  /**
   * The IdP refused a refresh for the API it named (`invalid_target`, `invalid_scope`): a
   * policy the grant does not match, not theft. The session ends (at some IdPs the refused
   * refresh has already used up its refresh token), the user's other sessions do not.
   */
  targetRefused? (session: ActiveSession, oauthError: OidcRejectedError['oauthError'], resource: string | undefined): void
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
  /** Opened DPoP keys of sessions (shared with the proxy, which signs with them). */
  dpopKeys?: DpopKeyring
  now?: () => number
}

/** One spending of the session's refresh token: what it asks the IdP for, and where the tokens go. */
export interface RefreshSpend {
  /** `resource` and `scope` of the refresh (none: the session's own token). */
  request: Omit<TokenRequest, 'dpop'>
  /** Prove possession of the session's DPoP key, so the new access token is bound to it. */
  dpop: boolean
  /** Whether the session, read again after a refusal or a lost write, still needs this refresh. */
  stillNeeded (session: ActiveSession): boolean
  /** The secrets with the new access token in place; the refresh token, claims and roles are set already. */
  place (secrets: SessionSecrets, tokens: TokenResult, dpop: boolean): SessionSecrets
  /**
   * Ask the IdP's userinfo endpoint for the claims when the answer has no ID token. Only with a
   * token meant for the IdP itself (the session's own); without, the claims stay as they were.
   */
  userInfo: boolean
}

export interface TokenRefresher {
  /** Whether the session's own access token is within the skew of expiry. */
  needsRefresh (session: ActiveSession): boolean
  /**
   * Whether the session's own token needs a refresh before it can be sent: near expiry, or, when
   * `dpop` is given, bound otherwise than it says (a policy change).
   */
  ownTokenStale (session: ActiveSession, dpop?: boolean): boolean
  /**
   * The session with a usable access token of its own (bound to its DPoP key when `dpop`);
   * throws SessionExpired or IdpUnavailable.
   */
  ensureFresh (session: ActiveSession, want?: { dpop?: boolean }): Promise<ActiveSession>
  /** The session's one refresh lock, for every other job that spends or replaces its tokens. */
  readonly lock: SessionLock
  /** Opened DPoP keys of sessions. */
  readonly dpopKeys: DpopKeyring
  /**
   * Spends the session's refresh token once; call it holding the lock, with the session just
   * re-read. A refusal of the newest refresh token of a live session ends the user's sessions
   * (theft); one for the API named ends this session only.
   */
  spendRefreshToken (current: ActiveSession, spend: RefreshSpend): Promise<ActiveSession>
  /** Refreshes the session's own token, holding the lock (bound as it was unless `dpop` says). */
  refreshOwnToken (current: ActiveSession, dpop?: boolean): Promise<ActiveSession>
  /** The secrets with a DPoP key (made now when they have none), and its pair for openid-client. */
  withDpopKey (current: ActiveSession): Promise<{ secrets: SessionSecrets, keyPair: CryptoKeyPair }>
}

/** Where a refresh puts the session's own new access token (marked bound when it was asked for with a proof). */
function placeOwnToken (secrets: SessionSecrets, tokens: TokenResult, dpop: boolean): SessionSecrets {
  const { accessTokenDpop: _previous, ...rest } = secrets
  return {
    ...rest,
    accessToken: tokens.accessToken,
    accessTokenExpiresAt: tokens.accessTokenExpiresAt,
    ...(dpop ? { accessTokenDpop: true } : {}),
  }
}

// Refusals that name what the refresh asked for, not the grant it spent.
const TARGET_REFUSALS = new Set(['invalid_target', 'invalid_scope'])
// Refusals of the gateway's own client authentication (a wrong secret or key): the refresh token
// was never looked at, so the session keeps it, as in an outage.
const CLIENT_REFUSALS = new Set(['invalid_client', 'unauthorized_client'])

export function createTokenRefresher (options: TokenRefresherOptions): TokenRefresher {
  const { sessions, revocation, oidc, observer } = options
  const now = options.now ?? Date.now
  const skewMs = options.skewSeconds * 1000
  const dpopKeys = options.dpopKeys ?? createDpopKeyring()
  const lock = createSessionLock({
    sessions,
    leases: options.leases,
    observer,
    ...(options.lockLeaseMs !== undefined ? { lockLeaseMs: options.lockLeaseMs } : {}),
    ...(options.maxWaitMs !== undefined ? { maxWaitMs: options.maxWaitMs } : {}),
    ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    ...(options.waitForChange !== undefined ? { waitForChange: options.waitForChange } : {}),
    now,
  })

  // A refresh asked for (an operator, a security event) after these tokens were obtained is due too.
  const refreshRequested = (session: ActiveSession) => (session.refreshRequests ?? 0) > (session.secrets.refreshRequestsSeen ?? 0)
  const needsRefresh = (session: ActiveSession) => session.secrets.accessTokenExpiresAt - skewMs <= now() || refreshRequested(session)
  const ownTokenStale = (session: ActiveSession, dpop?: boolean) =>
    needsRefresh(session) || (dpop !== undefined && (session.secrets.accessTokenDpop === true) !== dpop)

  async function withDpopKey (current: ActiveSession): Promise<{ secrets: SessionSecrets, keyPair: CryptoKeyPair }> {
    const jwk = current.secrets.dpopKey ?? await generateDpopKey()
    const keyPair = await dpopKeys.forSession(current.handle, jwk).keyPair()
    return { secrets: current.secrets.dpopKey ? current.secrets : { ...current.secrets, dpopKey: jwk }, keyPair }
  }

  async function claimsAfterRefresh (current: ActiveSession, tokens: TokenResult, userInfo: boolean): Promise<Record<string, unknown>> {
    if (tokens.idTokenClaims) return tokens.idTokenClaims
    if (!userInfo) return current.secrets.claims
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
  async function afterRefusal (current: ActiveSession, refreshToken: string, refusal: OidcRejectedError, spend: RefreshSpend): Promise<ActiveSession> {
    const latest = await sessions.reload(current)
    if (!latest) {
      observer.failure('session_gone')
      throw new SessionExpired({ cause: refusal })
    }
    if (latest.secrets.refreshToken !== refreshToken) {
      observer.failure('write_conflict')
      if (!spend.stillNeeded(latest)) return latest
      throw new IdpUnavailable({ cause: refusal })
    }
    observer.failure('rejected')
    if (spend.request.resource !== undefined && TARGET_REFUSALS.has(refusal.oauthError)) {
      observer.targetRefused?.(current, refusal.oauthError, spend.request.resource)
      await revocation.revoke({ session: current, reason: 'refresh_rejected' })
      throw new SessionExpired({ cause: refusal })
    }
    await revocation.revoke({ session: current, reason: 'refresh_rejected' })
    // We held the newest refresh token and no refresh of ours was in flight, yet the IdP refused it:
    // revoked at the IdP, or used by someone else (theft). Either way the user's sessions are suspect.
    observer.grantRejected(current, refusal.oauthError)
    await revocation.revoke({ sub: current.meta.sub, reason: 'theft_suspected' })
    throw new SessionExpired({ cause: refusal })
  }

  async function spendRefreshToken (current: ActiveSession, spend: RefreshSpend): Promise<ActiveSession> {
    const refreshToken = current.secrets.refreshToken
    if (!refreshToken) {
      await revocation.revoke({ session: current, reason: 'refresh_rejected' })
      observer.failure('rejected')
      throw new SessionExpired()
    }
    const keyed = spend.dpop ? await withDpopKey(current) : undefined
    observer.attempt()
    const started = now()
    let tokens: TokenResult
    try {
      tokens = await oidc.refresh(refreshToken, { ...spend.request, ...(keyed ? { dpop: keyed.keyPair } : {}) })
    } catch (error) {
      if (error instanceof OidcRejectedError && !CLIENT_REFUSALS.has(error.oauthError)) return afterRefusal(current, refreshToken, error, spend)
      // Not the IdP's verdict on the grant: it could not be reached, refused the gateway itself, or its
      // answer failed our checks (OidcResponseInvalidError). Either way the session is kept.
      observer.failure('idp_unavailable')
      throw error instanceof IdpUnavailable ? error : new IdpUnavailable({ cause: error })
    }
    const claims = { ...(await claimsAfterRefresh(current, tokens, spend.userInfo)) }
    const secrets = spend.place({
      ...(keyed?.secrets ?? current.secrets),
      // An IdP that does not rotate answers without a refresh token: keep the one we have.
      refreshToken: tokens.refreshToken ?? refreshToken,
      claims: profileClaims(claims),
      roles: rolesFrom(claims, options.rolesClaim),
      // As read under the lock, before asking the IdP: a request made after that read stays due.
      refreshRequestsSeen: current.refreshRequests ?? 0,
    }, tokens, spend.dpop)
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
      if (!spend.stillNeeded(latest)) return latest
      throw new IdpUnavailable()
    }
    observer.success(now() - started)
    return saved
  }

  function refreshOwnToken (current: ActiveSession, dpop?: boolean): Promise<ActiveSession> {
    return spendRefreshToken(current, {
      request: {},
      // Without a say, the token stays bound as it was.
      dpop: dpop ?? current.secrets.accessTokenDpop === true,
      stillNeeded: (candidate) => ownTokenStale(candidate, dpop),
      place: placeOwnToken,
      userInfo: true,
    })
  }

  function ensureFresh (session: ActiveSession, dpop: boolean | undefined): Promise<ActiveSession> {
    if (!ownTokenStale(session, dpop)) return Promise.resolve(session)
    return lock.run(session, {
      name: dpop === undefined ? 'own' : dpop ? 'own:dpop' : 'own:bearer',
      done: (candidate) => !ownTokenStale(candidate, dpop),
      run: (current) => refreshOwnToken(current, dpop),
    }).then((fresh) => {
      // A refresh already in flight when this caller saw a newer request answers an older one: go again.
      const requests = session.refreshRequests ?? 0
      return requests > (fresh.secrets.refreshRequestsSeen ?? 0) ? ensureFresh({ ...fresh, refreshRequests: requests }, dpop) : fresh
    })
  }

  return {
    needsRefresh,
    ownTokenStale,
    lock,
    dpopKeys,
    spendRefreshToken,
    refreshOwnToken,
    withDpopKey,
    ensureFresh (session, want = {}) {
      return ensureFresh(session, want.dpop)
    },
  }
}
