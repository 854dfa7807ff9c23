/**
 * Builds the ioredis client for standalone, Sentinel or Cluster deployments.
 *
 * The options encode the gateway's failure policy: never queue commands while
 * Redis is away (fail closed at once instead of hanging), bound every command
 * in time, and keep reconnecting quickly so service resumes by itself.
 */
import { Redis, Cluster, type Callback, type RedisOptions, type ClusterOptions } from 'ioredis'
import type { ConnectionOptions } from 'node:tls'
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

/**
 * A Sentinel client that moves to the new master as soon as the sentinels
 * announce a failover (`+switch-master`). Sentinel demotes the old master only
 * seconds later, and until then it still accepts writes that the resync then
 * throws away (new sessions, rotated refresh tokens), so staying connected to
 * it is not an option.
 *
 * Not ioredis's own `failoverDetector`: when an announcement reaches it while
 * a reconnect is already under way (the master crashed), it aborts that
 * reconnect and the client ends for good, so the gateway would answer 503
 * until restarted. Here the switch is only ever acted on through the public
 * `disconnect(true)` of a ready connection.
 */
class SentinelRedis extends Redis {
  constructor (options: RedisOptions) {
    super(options)
    followSwitchMaster(this)
  }

  // Duplicates (the invalidation subscriber) must follow the master too.
  override duplicate (override?: Partial<RedisOptions>): Redis {
    return new SentinelRedis({ ...this.options, ...override })
  }
}

function followSwitchMaster (connection: Redis): void {
  const { sentinels = [], name, sentinelUsername, sentinelPassword, sentinelTLS } = connection.options
  let announced: { host: string, port: number } | undefined
  let lastSwitch = ''

  const onMaster = () => {
    const stream = connection.stream as { remoteAddress?: string, remotePort?: number } | undefined
    return announced !== undefined && stream?.remotePort === announced.port &&
      (stream.remoteAddress === announced.host || stream.remoteAddress === `::ffff:${announced.host}`)
  }
  // Only a ready connection is ever dropped; one that is still connecting may have asked the
  // sentinels before the switch, so it is checked once it is ready. Each announcement is checked
  // once: a missed or stale one can never keep the connection from settling.
  const follow = () => {
    if (announced === undefined || connection.status !== 'ready') return
    const stale = !onMaster()
    announced = undefined
    if (stale) connection.disconnect(true)
  }

  const watchers = sentinels.map(({ host, port }) => {
    const watcher = new Redis({
      ...(host ? { host } : {}),
      ...(port ? { port } : {}),
      ...(sentinelUsername ? { username: sentinelUsername } : {}),
      ...(sentinelPassword ? { password: sentinelPassword } : {}),
      ...(sentinelTLS ? { tls: sentinelTLS } : {}),
      connectTimeout: 2000,
      retryStrategy: () => 1000,
      maxRetriesPerRequest: null,
    })
    // A sentinel that is down is the other sentinels' business; the data connection reports Redis trouble.
    watcher.on('error', () => {})
    watcher.on('message', (_channel: string, message: string) => {
      // "<master name> <old ip> <old port> <new ip> <new port>", once from every sentinel.
      const [master, , , host, port] = message.split(' ')
      if (master !== name || !host || !port || message === lastSwitch) return
      lastSwitch = message
      announced = { host, port: Number(port) }
      follow()
    })
    watcher.subscribe('+switch-master').catch(() => {})
    return watcher
  })

  connection.on('ready', follow)
  connection.once('end', () => {
    for (const watcher of watchers) watcher.disconnect()
  })
}

/** TLS settings for every connection of a deployment: the CA from REDIS_TLS_CA, else the system's. */
function tlsOptions (ca: string | undefined): ConnectionOptions {
  return ca === undefined ? {} : { ca }
}

/**
 * Whom the sentinels are asked as: their own password when one is set
 * (REDIS_SENTINEL_PASSWORD, sentinels often have one of their own), else the
 * data nodes' user and password.
 */
function sentinelAuth (config: Extract<RedisConfig, { mode: 'sentinel' }>): Partial<RedisOptions> {
  if (config.sentinelPassword !== undefined) return { sentinelPassword: config.sentinelPassword }
  return {
    ...(config.username ? { sentinelUsername: config.username } : {}),
    ...(config.password ? { sentinelPassword: config.password } : {}),
  }
}

export function createRedisConnection (config: RedisConfig): RedisConnection {
  switch (config.mode) {
    case 'standalone':
      // A rediss:// URL turns TLS on by itself; only a CA of our own needs saying.
      return new Redis(config.url, { ...common, ...(config.ca !== undefined ? { tls: tlsOptions(config.ca) } : {}) })
    case 'sentinel': {
      const tls = config.tls ? tlsOptions(config.ca) : undefined
      return new SentinelRedis({
        ...common,
        sentinels: config.sentinels,
        name: config.name,
        ...(config.username ? { username: config.username } : {}),
        ...(config.password ? { password: config.password } : {}),
        ...sentinelAuth(config),
        // TLS to the data nodes and to the sentinels alike.
        ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
        sentinelRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
      })
    }
    case 'cluster': {
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
        redisOptions: {
          ...common,
          ...(config.username ? { username: config.username } : {}),
          ...(config.password ? { password: config.password } : {}),
          ...(config.tls ? { tls: tlsOptions(config.ca) } : {}),
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
 * Whether every master answers now: the one server behind a standalone or Sentinel connection,
 * every master in a Cluster's slot map. With `rereadSlots` a Cluster's map is asked for again
 * first, so that a master that has just died still counts (the map keeps naming it until its
 * replica is promoted) and a promoted replica counts in its place.
 *
 * A Cluster's replicas (those its slot map names) are pinged too, though only the masters must
 * answer: the client then holds a connection to every node it knows, and so reports (`-node`) any
 * of them that goes away later. ioredis may put a pub/sub subscription on a replica as well as on
 * a master, and moves it in silence when that node goes.
 */
export async function everyMasterAnswers (connection: RedisConnection, options: { rereadSlots: boolean }): Promise<boolean> {
  const answers = (redis: Redis) => redis.ping().then(() => true, () => false)
  if (!(connection instanceof Cluster)) return answers(connection)
  if (options.rereadSlots) {
    const reread = await new Promise<boolean>(resolve => { connection.refreshSlotsCache(error => resolve(!error)) })
    if (!reread) return false
  }
  const masters = new Set(connection.nodes('master'))
  const nodes = connection.nodes('all')
  const answered = await Promise.all(nodes.map(answers))
  return masters.size > 0 && nodes.every((node, i) => answered[i] === true || !masters.has(node))
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
