/**
 * Every Redis key the gateway uses, built in one place.
 *
 * Keys that are used together carry the same hash tag (`{…}`) so they live in
 * one Redis Cluster slot: a session and its refresh lock share the session's
 * handle; a user's index shares the user's sub.
 */
const PREFIX = 'bff:'

// Subs and sids are chosen by the identity provider; percent-encode braces (and
// `%` itself, so encodings never collide) so a value can never change which part
// of the key Redis hashes.
const tag = (value: string) => value.replace(/[%{}]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

export const keyFor = {
  session: (handle: string) => `${PREFIX}{s:${tag(handle)}}`,
  lock: (name: string) => `${PREFIX}lock:{${tag(name)}}`,
  userSessions: (sub: string) => `${PREFIX}{u:${tag(sub)}}:sessions`,
  userEpoch: (sub: string) => `${PREFIX}{u:${tag(sub)}}:epoch`,
  sidSessions: (sid: string) => `${PREFIX}{sid:${tag(sid)}}`,
  loginState: (state: string) => `${PREFIX}login:{${tag(state)}}`,
  once: (key: string) => `${PREFIX}once:{${tag(key)}}`,
  /** Pattern matching every session key, for flush-all. */
  allSessions: () => `${PREFIX}{s:*}`,
  allUserIndexes: () => `${PREFIX}{u:*}:sessions`,
  allSidIndexes: () => `${PREFIX}{sid:*}`,
}
