/**
 * The invalidation channel: Redis pub/sub messages announcing session writes,
 * so every instance's session cache evicts what changed within milliseconds.
 *
 * Messages: `s:<handle>` (one session changed or ended), `u:<sub>` (every
 * session of a user: revoke-all, epoch bump), `*` (everyone).
 */
import type { RedisConnection } from './redis-client.js'
import { INVALIDATION_CHANNEL } from './keys.js'
import type { SessionCache } from './session-cache.js'

export const invalidationMessage = {
  session: (handle: string) => `s:${handle}`,
  user: (sub: string) => `u:${sub}`,
  all: () => '*',
}

/** What a message names, read once for everyone who hears it. */
export type Invalidation =
  | { readonly kind: 'session', readonly handle: string }
  | { readonly kind: 'user', readonly sub: string }
  | { readonly kind: 'all' }

/** Anything but a session or a user message is read as "everyone": the safe side. */
export function parseInvalidation (message: string): Invalidation {
  if (message.startsWith('s:')) return { kind: 'session', handle: message.slice(2) }
  if (message.startsWith('u:')) return { kind: 'user', sub: message.slice(2) }
  return { kind: 'all' }
}

export function applyInvalidation (cache: SessionCache, invalidation: Invalidation): void {
  if (invalidation.kind === 'session') cache.invalidateSession(invalidation.handle)
  else if (invalidation.kind === 'user') cache.invalidateUser(invalidation.sub)
  else cache.invalidateAll()
}

export interface InvalidationSubscriber {
  close (): Promise<void>
}

/** How often the subscribed connection is probed; a silent partition is noticed within this plus a command timeout. */
const HEARTBEAT_MS = 1000

/**
 * Subscribes a dedicated connection and keeps the cache's trust tied to it:
 * trusted only once subscribed, distrusted the moment the connection wavers —
 * including a connection that stays open but stops answering (a partition or
 * a frozen Redis), which a heartbeat PING detects. `onMessage` hears every
 * message after the cache has applied it (open WebSockets re-check their
 * sessions; instances waiting for another's refresh wake up).
 */
export function subscribeInvalidations (connection: RedisConnection, cache: SessionCache, onError: (error: unknown) => void, onMessage?: (invalidation: Invalidation) => void): InvalidationSubscriber {
  const subscriber = connection.duplicate()
  let closed = false
  let subscribed = false

  const distrust = () => {
    subscribed = false
    cache.distrust()
  }

  const subscribe = () => {
    subscriber.subscribe(INVALIDATION_CHANNEL).then(() => {
      if (closed) return
      subscribed = true
      cache.trust()
    }, (error: unknown) => {
      distrust()
      onError(error)
    })
  }

  subscriber.on('message', (_channel: string, message: string) => {
    const invalidation = parseInvalidation(message)
    applyInvalidation(cache, invalidation)
    onMessage?.(invalidation)
  })
  subscriber.on('ready', subscribe)
  // A Cluster moves its subscription to another node silently when the node it used goes away;
  // messages published in between are lost, so a lost node means distrust too.
  for (const event of ['error', 'close', 'reconnecting', 'end', '-node']) subscriber.on(event, distrust)
  if (subscriber.status === 'ready') subscribe()

  // Messages may have been lost while the probe went unanswered: distrust clears the cache, and
  // trust comes back (from empty) only with an answer on a connection that is still subscribed.
  const heartbeat = setInterval(() => {
    if (subscriber.status !== 'ready') return
    subscriber.ping().then(() => {
      if (closed || cache.trusted) return
      // After a distrust the subscription may be gone (or moved): subscribe again, then trust.
      if (subscribed) cache.trust()
      else subscribe()
    }, () => cache.distrust())
  }, HEARTBEAT_MS)
  heartbeat.unref()

  return {
    async close () {
      closed = true
      clearInterval(heartbeat)
      distrust()
      await subscriber.quit().catch(() => subscriber.disconnect())
    },
  }
}
