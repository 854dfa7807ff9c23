/**
 * Many real sessions in seconds, for the many-users contenders. They are made
 * by the gateway's own session code (its Redis store, session crypto and
 * session manager, built from the very configuration the bench's gateways
 * start with), so they are sessions exactly as a login writes them, which the
 * gateways then read, decrypt and check like any other.
 *
 * Each is its own user (`sub` bench-user-<n>, so per-user keys are exercised)
 * and carries alice's real tokens, claims and roles from her login through the
 * IdP, as her session holds them. Their access token outlives the run, so none
 * is ever refreshed (a refresh would rotate the refresh token they share).
 *
 * Speed: many creations in flight at once on one auto-pipelining connection,
 * so their commands go to Redis in batches rather than one round trip each.
 */
import { Redis } from 'ioredis'
import type { GatewayConfig } from '../gateway/config.js'
import { createRedisStore } from '../gateway/session/redis-store.js'
import { createSessionCrypto } from '../gateway/session/session-crypto.js'
import { createSessionManager, type SessionSecrets } from '../gateway/session/sessions.js'
import type { SessionMeta } from '../gateway/session/store.js'

/** Creations in flight at once: enough to fill the pipeline, few enough to keep the event loop responsive. */
const IN_FLIGHT = 256

export interface SessionFactory {
  /** The session cookie's name, as the gateways read it. */
  readonly cookieName: string
  /** Creates sessions until `count` exist (those made before are kept); answers every cookie value, oldest first. */
  grow (count: number): Promise<readonly string[]>
  close (): Promise<void>
}

/** What of a gateway's configuration its sessions depend on. */
export type SessionFactoryConfig = Pick<GatewayConfig, 'redis' | 'sessionSecrets' | 'idleTimeoutSeconds' | 'absoluteTimeoutSeconds' | 'cookie'>

/**
 * `config`: the configuration of the gateways that will read the sessions; `templateCookie`: the
 * value of a signed-in session's cookie (alice's), whose tokens every new session gets.
 */
export async function createSessionFactory (config: SessionFactoryConfig, templateCookie: string): Promise<SessionFactory> {
  if (config.redis?.mode !== 'standalone') throw new Error('the bench\'s sessions go to a standalone Redis')
  const connection = new Redis(config.redis.url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 })
  const store = createRedisStore(connection)
  const manager = createSessionManager({
    store,
    crypto: createSessionCrypto(config.sessionSecrets),
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    absoluteTimeoutSeconds: config.absoluteTimeoutSeconds,
  })
  try {
    const template = await manager.load(templateCookie)
    if (!template) throw new Error('the signed-in session to copy tokens from was not found')
    // What the login stored; a narrowed token fetched since (for (e)) is not part of a plain session.
    const { csrfToken: _csrf, apiTokens: _apiTokens, ...secrets } = template.secrets
    const identity: Omit<SessionMeta, 'createdAt' | 'absoluteExpiresAt' | 'epoch' | 'sub'> = {
      ip: template.meta.ip,
      userAgent: template.meta.userAgent,
    }
    const cookies: string[] = []

    const createOne = async (n: number) => {
      const sub = `bench-user-${n}`
      const own: Omit<SessionSecrets, 'csrfToken'> = { ...secrets, claims: { ...secrets.claims, sub } }
      const created = await manager.create({ ...identity, sub }, own)
      cookies[n] = created.cookieValue
    }

    return {
      cookieName: config.cookie.name,
      async grow (count) {
        let next = cookies.length
        const worker = async () => {
          while (next < count) await createOne(next++)
        }
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
        return cookies
      },
      close: () => store.close(),
    }
  } catch (error) {
    await store.close()
    throw error
  }
}
