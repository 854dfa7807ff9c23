/**
 * Every Redis key (and the one pub/sub channel) the gateway uses, built in one
 * place.
 *
 * Keys that belong to one session carry its hash tag `{s:<handle>}`, so they
 * live in one Redis Cluster slot with the session: its refresh lock and the
 * marker that its tokens were revoked. A user's index, epoch and account
 * status share `{u:<sub>}`. Only the session record itself ends in `}`: the
 * scan pattern for sessions (`bff:{s:*}`, where `*` cannot be followed by
 * anything after the final brace) never matches the keys beside it.
 */
const PREFIX = 'bff:'

// Subs and sids are chosen by the identity provider; percent-encode braces (and
// `%` itself, so encodings never collide) so a value can never change which part
// of the key Redis hashes.
const tag = (value: string) => value.replace(/[%{}]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

export const keyFor = {
  session: (handle: string) => `${PREFIX}{s:${tag(handle)}}`,
  /** The lease held while one instance refreshes the session's tokens. */
  refreshLock: (handle: string) => `${PREFIX}{s:${tag(handle)}}:refresh-lock`,
  /** Claimed by whichever instance revokes a revoked session's refresh token at the IdP. */
  tokensRevoked: (handle: string) => `${PREFIX}{s:${tag(handle)}}:tokens-revoked`,
  userSessions: (sub: string) => `${PREFIX}{u:${tag(sub)}}:sessions`,
  userEpoch: (sub: string) => `${PREFIX}{u:${tag(sub)}}:epoch`,
  /** Present while the user's account is disabled: no login of theirs creates a session. */
  accountDisabled: (sub: string) => `${PREFIX}{u:${tag(sub)}}:disabled`,
  sidSessions: (sid: string) => `${PREFIX}{sid:${tag(sid)}}`,
  loginState: (state: string) => `${PREFIX}login:{${tag(state)}}`,
  /** A back-channel logout token's `jti`, claimed once per issuer. */
  logoutTokenId: (issuer: string, jti: string) => `${PREFIX}once:{${tag(`logout-jti:${issuer}:${jti}`)}}`,
  /** A native app's DPoP proof `jti`, claimed once per app key (its thumbprint). */
  dpopProofId: (jkt: string, jti: string) => `${PREFIX}once:{${tag(`dpop-jti:${jkt}:${jti}`)}}`,
  /** A native sign-in waiting to be redeemed, by the hash of its handoff code. */
  handoff: (id: string) => `${PREFIX}handoff:{${tag(id)}}`,
  /** A Security Event Token's `jti`, claimed once per issuer. */
  securityEventId: (issuer: string, jti: string) => `${PREFIX}once:{${tag(`set-jti:${issuer}:${jti}`)}}`,
  /**
   * The start-up check's own keys, one per Redis type: beside the gateway's (so the ACL's key
   * patterns apply alike), in one slot, never matched by `allSessions`. No handle is this short.
   */
  startupCheck: (type: string) => `${PREFIX}{s:startup-check}:check-${type}`,
  /** Pattern matching every session key, for flush-all. */
  allSessions: () => `${PREFIX}{s:*}`,
  allUserIndexes: () => `${PREFIX}{u:*}:sessions`,
  allSidIndexes: () => `${PREFIX}{sid:*}`,
}

/** The prefix of @fastify/rate-limit's counters (it appends the route and client). */
export const RATE_LIMIT_NAMESPACE = `${PREFIX}rate-limit:`

/** The pub/sub channel that announces session writes to every instance's cache. */
export const INVALIDATION_CHANNEL = `${PREFIX}invalidate`
