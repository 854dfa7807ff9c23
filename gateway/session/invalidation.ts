/**
 * The invalidation channel: Redis pub/sub messages announcing session writes,
 * so every instance's session cache evicts what changed within milliseconds.
 *
 * Messages: `s:<handle>` (one session changed or ended), `u:<sub>` (every
 * session of a user: revoke-all, epoch bump), `*` (everyone).
 */
import type { RedisConnection } from './redis-client.js'
import type { SessionCache } from './session-cache.js'

export const INVALIDATION_CHANNEL = 'bff:invalidate'

export const invalidationMessage = {
  session: (handle: string) => `s:${handle}`,
  user: (sub: string) => `u:${sub}`,
  all: () => '*',
}

export function applyInvalidation (cache: SessionCache, message: string): void {
  if (message.startsWith('s:')) cache.invalidateSession(message.slice(2))
  else if (message.startsWith('u:')) cache.invalidateUser(message.slice(2))
  else cache.invalidateAll()
}

export interface InvalidationSubscriber {
  close (): Promise<void>
}

/**
 * Subscribes a dedicated connection and keeps the cache's trust tied to it:
 * trusted only once subscribed, distrusted the moment the connection wavers.
 */
export function subscribeInvalidations (connection: RedisConnection, cache: SessionCache, onError: (error: unknown) => void): InvalidationSubscriber {
  const subscriber = connection.duplicate()
  let closed = false

  const subscribe = () => {
    subscriber.subscribe(INVALIDATION_CHANNEL).then(() => {
      if (!closed) cache.trust()
    }, (error: unknown) => {
      cache.distrust()
      onError(error)
    })
  }

  subscriber.on('message', (_channel: string, message: string) => applyInvalidation(cache, message))
  subscriber.on('ready', subscribe)
  for (const event of ['error', 'close', 'reconnecting', 'end']) {
    subscriber.on(event, () => cache.distrust())
  }
  if (subscriber.status === 'ready') subscribe()

  return {
    async close () {
      closed = true
      cache.distrust()
      await subscriber.quit().catch(() => subscriber.disconnect())
    },
  }
}
