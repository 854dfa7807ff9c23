/**
 * The invalidation channel: Redis pub/sub messages announcing session writes,
 * so every instance's session cache evicts what changed within milliseconds.
 *
 * Messages: `s:<handle>` (one session changed or ended), `u:<sub>` (every
 * session of a user: revoke-all, epoch bump), `*` (everyone).
 */
import { everyMasterAnswers, type RedisConnection } from './redis-client.js'
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

/** How often the deployment is probed; a silent partition is noticed within this plus a command timeout. */
const HEARTBEAT_MS = 1000

/**
 * Subscribes a dedicated connection and keeps the cache's trust tied to it:
 * trusted only once subscribed and every master answers, distrusted the
 * moment the connection wavers — including a connection that stays open but
 * stops answering (a partition or a frozen Redis), which a heartbeat PING
 * detects. `onMessage` hears every message after the cache has applied it
 * (open WebSockets re-check their sessions; instances waiting for another's
 * refresh wake up).
 *
 * On a Cluster, a master that goes away starts a failover: its replica may
 * lack the last writes the cache has seen, and the subscription may move to
 * another node, losing messages meanwhile. So trust comes back only once a
 * fresh slot map names masters that all answer — after the promotion — and
 * the cache restarts empty, from what the new masters hold.
 */
export function subscribeInvalidations (connection: RedisConnection, cache: SessionCache, onError: (error: unknown) => void, onMessage?: (invalidation: Invalidation) => void): InvalidationSubscriber {
  const subscriber = connection.duplicate()
  let closed = false
  let subscribed = false
  // Bumped by every distrust: a check that began before one may not restore trust.
  let distrusts = 0

  const distrustCache = () => {
    distrusts += 1
    cache.distrust()
  }
  // The connection wavered: the subscription itself may be gone.
  const distrust = () => {
    subscribed = false
    distrustCache()
  }

  const regainTrust = async () => {
    const since = distrusts
    if (!subscribed) {
      try {
        await subscriber.subscribe(INVALIDATION_CHANNEL)
      } catch (error) {
        distrust()
        onError(error)
        return
      }
      if (distrusts !== since) return
      subscribed = true
    }
    if (!await everyMasterAnswers(subscriber, { rereadSlots: true })) return
    if (!closed && distrusts === since) cache.trust()
  }

  // Messages may have been lost while a probe went unanswered: distrust clears the cache, and
  // trust comes back (from empty) only through regainTrust, on a connection that is subscribed.
  const probe = async () => {
    if (!cache.trusted) return regainTrust()
    const since = distrusts
    if (!await everyMasterAnswers(subscriber, { rereadSlots: false }) && distrusts === since) distrustCache()
  }

  // One check at a time; one asked for meanwhile runs right after (a reconnect must not wait for the heartbeat).
  let checking = false
  let checkAgain = false
  const check = () => {
    if (closed || subscriber.status !== 'ready') return
    if (checking) {
      checkAgain = true
      return
    }
    checking = true
    probe().catch(onError).finally(() => {
      checking = false
      if (checkAgain) {
        checkAgain = false
        check()
      }
    })
  }

  subscriber.on('message', (_channel: string, message: string) => {
    const invalidation = parseInvalidation(message)
    applyInvalidation(cache, invalidation)
    onMessage?.(invalidation)
  })
  subscriber.on('ready', check)
  // A Cluster moves its subscription to another node silently when the node it used goes away;
  // messages published in between are lost, so a lost node means distrust too.
  for (const event of ['error', 'close', 'reconnecting', 'end', '-node']) subscriber.on(event, distrust)
  check()

  const heartbeat = setInterval(check, HEARTBEAT_MS)
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
