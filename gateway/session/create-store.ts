/**
 * Chooses the session store the configuration asks for.
 */
import type { GatewayConfig } from '../config.js'
import { createMemoryStore } from './memory-store.js'
import { createRedisConnection, type RedisConnection } from './redis-client.js'
import { createRedisStore, type RedisStoreOptions } from './redis-store.js'
import type { SessionStore } from './store.js'

export interface CreatedStore {
  store: SessionStore
  /** The Redis connection behind the store, when there is one (readiness, pub/sub). */
  redis?: RedisConnection
}

export function createSessionStore (config: Pick<GatewayConfig, 'sessionStore' | 'redis'>, options: RedisStoreOptions = {}): CreatedStore {
  if (config.sessionStore === 'memory' || !config.redis) return { store: createMemoryStore() }
  const redis = createRedisConnection(config.redis)
  return { store: createRedisStore(redis, options), redis }
}
