/**
 * Builds the ioredis client for standalone, Sentinel or Cluster deployments.
 *
 * The options encode the gateway's failure policy: never queue commands while
 * Redis is away (fail closed at once instead of hanging), bound every command
 * in time, and keep reconnecting quickly so service resumes by itself.
 */
import { Redis, Cluster, type Callback, type RedisOptions, type ClusterOptions } from 'ioredis'
import type { RedisConfig } from '../config.js'

export type RedisConnection = Redis | Cluster

const COMMAND_TIMEOUT_MS = 1500

const common: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: COMMAND_TIMEOUT_MS,
  connectTimeout: 2000,
  enableAutoPipelining: true,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, 500),
  // After a Sentinel failover the old master turns replica; reconnect to the new one and resend.
  reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 2 : false),
}

/**
 * ioredis parks transactions, pipelines and auto-pipelined commands until the
 * cluster's first slot map arrives, whatever `enableOfflineQueue` says. Against
 * a cluster that has no slots yet (not formed, or still being created) requests
 * would hang instead of failing closed; refuse them at once, as every other
 * command is refused while the cluster is not ready.
 */
class FailFastCluster extends Cluster {
  override delayUntilReady (callback: Callback): void {
    if (this.status === 'ready') {
      super.delayUntilReady(callback)
      return
    }
    process.nextTick(callback, new Error('Cluster is not ready (no slot map yet) and the offline queue is off'))
  }
}

export function createRedisConnection (config: RedisConfig): RedisConnection {
  switch (config.mode) {
    case 'standalone':
      return new Redis(config.url, { ...common })
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: config.sentinels,
        name: config.name,
        ...(config.username ? { username: config.username, sentinelUsername: config.username } : {}),
        ...(config.password ? { password: config.password, sentinelPassword: config.password } : {}),
        ...(config.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        sentinelRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
        // Sentinel reconfigures the old master only seconds after a failover and until then it still
        // accepts writes, which the resync then throws away (sessions, rotated refresh tokens). Follow
        // the sentinels' +switch-master at once instead of staying connected to it.
        failoverDetector: true,
      })
    case 'cluster': {
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
        redisOptions: {
          ...common,
          ...(config.username ? { username: config.username } : {}),
          ...(config.password ? { password: config.password } : {}),
          ...(config.tls ? { tls: {} } : {}),
        },
      }
      return new FailFastCluster(config.nodes, options)
    }
  }
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForRedis (connection: RedisConnection, timeoutMs: number): Promise<void> {
  if (connection.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off('ready', onReady)
      reject(new Error(`Redis not ready after ${timeoutMs} ms`))
    }, timeoutMs)
    const onReady = () => {
      clearTimeout(timer)
      resolve()
    }
    connection.once('ready', onReady)
  })
}

/**
 * Logs the connection's state changes once each (not every retry), so an outage is loud
 * but does not flood the log, and ioredis never prints "Unhandled error event".
 */
export function watchRedisConnection (connection: RedisConnection | undefined, log: { warn: (o: object, m: string) => void, info: (m: string) => void }): void {
  if (!connection) return
  let down = false
  connection.on('error', (error: Error) => {
    if (down) return
    down = true
    log.warn({ err: error }, 'Redis connection lost: requests get 503 session_store_unavailable until it is back')
  })
  connection.on('ready', () => {
    if (!down) return
    down = false
    log.info('Redis connection restored')
  })
}
