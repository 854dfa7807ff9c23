/**
 * The session layer's resources: the store (Redis or memory), the in-process
 * cache and the invalidation channel that keeps it honest, and the session
 * manager and revocation service built on them. Everything here is created,
 * decorated and closed by this plugin. The rest of the gateway never sees the
 * store: each part is handed the one role it needs (`loginStates`,
 * `replayClaims`, `leases`), sessions are read through `sessions`, ended
 * through `revocation`, and handed to native apps through `handoffCodes`;
 * account status and session marks are set through `accounts`.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { revokeRefreshToken } from './refresh-token-revocation.js'
import { createSessionStore } from './create-store.js'
import { watchRedisConnection, type RedisConnection } from './redis-client.js'
import { checkRedisAtStart } from './redis-start-check.js'
import { createSessionCache } from './session-cache.js'
import { createChangeWaiters } from './change-waiters.js'
import { applyInvalidation, parseInvalidation, subscribeInvalidations, type Invalidation } from './invalidation.js'
import type { Leases, LoginStates, ReplayClaims, SessionStore } from './store.js'
import { createRevocation, type Revocation } from './revocation.js'
import { createAccounts, type Accounts } from './accounts.js'
import { createSessionCrypto } from './session-crypto.js'
import { createSessionManager, type SessionAccess } from './sessions.js'
import { createHandoffCodes, type HandoffCodes } from './handoff-codes.js'

/** News of sessions changed or ended anywhere (the invalidation channel), for whoever holds on to one. */
export interface SessionChanges {
  /** `listener` hears every invalidation, after the cache has applied it. */
  listen (listener: (invalidation: Invalidation) => void): void
  /** Resolves when a message names the session (or its user, or everyone), or after `ms`. */
  wait (handle: string, ms: number): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionAccess
    /** The one way sessions end. */
    revocation: Revocation
    /** Account status and the marks an operator or a security event puts on a user's sessions. */
    accounts: Accounts
    sessionChanges: SessionChanges
    loginStates: LoginStates
    replayClaims: ReplayClaims
    /** Native sign-ins waiting for their app (RFC 8252 handoff). */
    handoffCodes: HandoffCodes
    /** The refresh lock's leases. */
    leases: Leases
    /** The Redis connection behind the session store, shared with the login rate limit; null with the memory store. */
    redis: RedisConnection | null
  }
}

export interface SessionStorePluginOptions {
  config: GatewayConfig
  /** A store to use instead of the configured one (tests run the same app on several). */
  store?: SessionStore
  /** Lifetime of a native handoff code instead of the contract's 60 s (tests of its expiry). */
  handoffCodeTtlMs?: number
}

/** A safety net only; invalidation messages are what keep cached sessions correct. */
const SESSION_CACHE_TTL_MS = 60_000
/** How long start-up waits for Redis before listening anyway (requests get 503 until it is there). */
const REDIS_START_WAIT_MS = 5000

async function sessionStorePlugin (app: FastifyInstance, options: SessionStorePluginOptions) {
  const { config } = options
  const { metrics, audit, oidc } = app
  // The cache needs the invalidation channel, which needs Redis: none with the memory store.
  const cache = !options.store && config.sessionStore === 'redis' && config.sessionCache
    ? createSessionCache({ ...config.sessionCache, ttlMs: SESSION_CACHE_TTL_MS })
    : undefined
  const listeners: Array<(invalidation: Invalidation) => void> = []
  const announce = (invalidation: Invalidation) => { for (const listener of listeners) listener(invalidation) }
  const created = options.store
    ? { store: options.store }
    : createSessionStore(config, {
      onError: () => metrics.storeErrors.inc(),
      ...(cache
        ? {
            // This instance's own writes evict at once, without waiting for their echo from Redis.
            onAnnounce: (message: string) => {
              const invalidation = parseInvalidation(message)
              applyInvalidation(cache, invalidation)
              announce(invalidation)
            },
          }
        : {}),
    })
  // Tracing (when on): a span per store operation made for a request.
  const store = app.tracing?.traceStore(created.store) ?? created.store
  const redis = created.redis ?? null

  metrics.trackSessions(() => store.countSessions())
  if (cache) metrics.trackSessionCache(cache)
  watchRedisConnection(created.redis, app.log)
  if (store.kind === 'memory') {
    app.log.warn('SESSION_STORE=memory: sessions live in this process only; use Redis for more than one instance or a restart-proof demo')
  }

  const invalidations = cache && redis
    ? subscribeInvalidations(redis, cache,
      (error) => app.log.warn({ err: error }, 'session invalidation channel failed; cache distrusted'),
      announce)
    : undefined

  const crypto = createSessionCrypto(config.sessionSecrets)
  const sessions = createSessionManager({
    store,
    ...(cache ? { cache } : {}),
    crypto,
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    absoluteTimeoutSeconds: config.absoluteTimeoutSeconds,
    // Sessions revoked from elsewhere (operator, back-channel, another device) keep their tokens
    // sealed under the browser's key; the browser's next visit lets us revoke them at the IdP.
    onRevokedSessionSeen: async (secrets, meta, reason) => {
      await revokeRefreshToken(oidc, secrets.refreshToken, app.log)
      audit('session_revoked', { reason, sub: meta.sub, stage: 'refresh_token_revoked' })
    },
  })

  // Instances waiting for another's token refresh are woken by its write, not only by their poll.
  const waiters = createChangeWaiters()
  listeners.push((invalidation) => waiters.announce(invalidation))

  app.decorate('sessions', sessions)
  const revocation = createRevocation({
    records: store,
    index: store,
    revokeOwn: (session, reason) => sessions.revoke(session, reason),
    forgetCookie: (rawCookie, replacedBy) => sessions.forget(rawCookie, replacedBy),
    revokeRefreshToken: (token) => revokeRefreshToken(oidc, token, app.log),
    audit,
    epochTtlMs: config.absoluteTimeoutSeconds * 1000,
  })
  app.decorate('revocation', revocation)
  app.decorate('accounts', createAccounts({
    statuses: { isDisabled: store.isDisabled, setDisabled: store.setDisabled },
    marks: { requestRefresh: store.requestRefresh, forgetAcr: store.forgetAcr },
    records: store,
    index: store,
    revocation,
    audit,
    statusChanged: (status, source) => metrics.accountStatusChanges.inc({ status, source }),
  }))
  // Each role as an object of its own: nothing else of the store is reachable through it.
  app.decorate('loginStates', { saveLoginState: store.saveLoginState, takeLoginState: store.takeLoginState } satisfies LoginStates)
  app.decorate('replayClaims', { claimOnce: store.claimOnce } satisfies ReplayClaims)
  app.decorate('handoffCodes', createHandoffCodes({
    store: { saveHandoff: store.saveHandoff, takeHandoff: store.takeHandoff },
    crypto,
    epochs: { userEpoch: store.userEpoch },
    ...(options.handoffCodeTtlMs !== undefined ? { ttlMs: options.handoffCodeTtlMs } : {}),
  }))
  app.decorate('leases', { acquireLock: store.acquireLock, renewLock: store.renewLock, releaseLock: store.releaseLock } satisfies Leases)
  app.decorate('redis', { getter: () => redis })
  app.decorate('sessionChanges', {
    listen: (listener) => { listeners.push(listener) },
    wait: (handle, ms) => waiters.wait(handle, ms),
  } satisfies SessionChanges)

  // A Redis that refuses us (password, certificate, a command the user may not run) stops start-up
  // with RedisAccessError; one that does not answer yet does not.
  app.addHook('onReady', async () => {
    if (!redis || !config.redis) return
    const atStart = await checkRedisAtStart(redis, config.redis, REDIS_START_WAIT_MS)
    if (!atStart.ready) app.log.error({ err: atStart.lastError }, 'Redis is not reachable yet; requests get 503 until it is')
  })
  app.addHook('onClose', async () => {
    await invalidations?.close()
    await store.close()
  })
}

export default fp(sessionStorePlugin, { name: 'bff-session-store', dependencies: ['bff-observability', 'bff-oidc'] })
