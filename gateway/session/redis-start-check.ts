/**
 * The start-up check of the Redis connection.
 *
 * A Redis that answers but refuses the gateway (a wrong password, a
 * certificate the gateway does not trust, a user that may not run a command
 * the gateway needs) would answer every request with 503 until someone read
 * the logs; it stops start-up instead, with one line naming the variable to
 * fix. A Redis that does not answer yet does not stop it: requests get 503
 * until it is back, as during any outage.
 *
 * ioredis errors are translated here, once, into `RedisAccessError`, with the
 * original as the cause.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisConfig } from '../config.js'
import { INVALIDATION_CHANNEL, keyFor } from './keys.js'
import { invalidationMessage } from './invalidation.js'
import { waitForRedis, type RedisConnection } from './redis-client.js'

/** Redis refuses the gateway; the message is one line, starting with the variable to fix. */
export class RedisAccessError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'RedisAccessError'
  }
}

export interface RedisAtStart {
  /** False when Redis did not answer in time: the gateway starts anyway and answers 503 until it does. */
  ready: boolean
  /** The last connection error seen while waiting, for the log. */
  lastError?: unknown
}

/**
 * Waits up to `timeoutMs` for the connection, asks the sentinels or cluster
 * seeds directly, then checks that the user may run every command the gateway
 * sends.
 * @throws RedisAccessError when Redis refuses the credentials, the certificate or a command.
 */
export async function checkRedisAtStart (connection: RedisConnection, config: RedisConfig, timeoutMs: number): Promise<RedisAtStart> {
  let refuse: (error: RedisAccessError) => void = () => {}
  const refused = new Promise<never>((_resolve, reject) => { refuse = reject })
  // The race below is what listens; a second refusal after the first must not go unhandled.
  refused.catch(() => {})
  let lastError: unknown
  const stopWatching = watchConnection(connection, config, refuse, (error) => { lastError = error })
  try {
    const ready = await Promise.race([
      Promise.all([
        waitForRedis(connection, timeoutMs).then(() => true, () => false),
        askEntryPoints(connection, config, refuse),
      ]).then(([isReady]) => isReady),
      refused,
    ])
    if (!ready) return { ready: false, lastError }
  } finally {
    stopWatching()
  }
  await checkCommands(connection, dataPeer(config, undefined))
  return { ready: true }
}

/** Whom the gateway talks to, as messages name it, and which variables an operator changes for it. */
interface Peer {
  what: 'Redis' | 'the sentinel'
  /** host:port, when known. */
  address: string | undefined
  /** The user the gateway signs in as there; undefined for Redis's `default` user. */
  username: string | undefined
  /** Holds the password it checks. */
  passwordVariable: string
  /** Names the user whose rights it checks. */
  userVariable: string
}

function dataPeer (config: RedisConfig, address: string | undefined): Peer {
  if (config.mode === 'standalone') {
    return { what: 'Redis', address, username: usernameIn(config.url), passwordVariable: 'REDIS_URL', userVariable: 'REDIS_URL' }
  }
  return { what: 'Redis', address, username: config.username, passwordVariable: 'REDIS_PASSWORD', userVariable: 'REDIS_USERNAME' }
}

/** Sentinels are asked as the data nodes are, unless they have a password of their own (then as `default`). */
function sentinelPeer (config: Extract<RedisConfig, { mode: 'sentinel' }>, address: string): Peer {
  const ownPassword = config.sentinelPassword !== undefined || config.password === undefined
  return ownPassword
    ? { what: 'the sentinel', address, username: undefined, passwordVariable: 'REDIS_SENTINEL_PASSWORD', userVariable: 'REDIS_SENTINEL_PASSWORD' }
    : { what: 'the sentinel', address, username: config.username, passwordVariable: 'REDIS_PASSWORD', userVariable: 'REDIS_USERNAME' }
}

function usernameIn (url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).username) || undefined
  } catch {
    return undefined
  }
}

// Node's codes for a certificate chain or name it cannot trust.
const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'ERR_TLS_CERT_ALTNAME_INVALID',
])

type Refusal =
  | { kind: 'credentials', reply: string }
  | { kind: 'certificate', reason: string }
  | { kind: 'permission', reply: string }

/** What a connection error says about the gateway's settings; undefined when it is only an outage. */
function refusalOf (error: unknown): Refusal | undefined {
  if (!(error instanceof Error)) return undefined
  const { code } = error as NodeJS.ErrnoException
  if (code !== undefined && UNTRUSTED_CERTIFICATE.has(code)) return { kind: 'certificate', reason: error.message }
  // Replies come as they are ("WRONGPASS …") or wrapped by ioredis ("Ready check failed: NOAUTH …").
  const reply = /\b(WRONGPASS|NOAUTH|NOPERM)\b.*$/.exec(error.message)
  if (!reply) return undefined
  return reply[1] === 'NOPERM' ? { kind: 'permission', reply: reply[0] } : { kind: 'credentials', reply: reply[0] }
}

function accessError (refusal: Refusal, peer: Peer, cause: unknown): RedisAccessError {
  const at = peer.address === undefined ? peer.what : `${peer.what} at ${peer.address}`
  const user = `"${peer.username ?? 'default'}"`
  switch (refusal.kind) {
    case 'certificate':
      return new RedisAccessError(`REDIS_TLS_CA: the certificate of ${at} is not trusted (${refusal.reason})`, { cause })
    case 'permission':
      return new RedisAccessError(`${peer.userVariable}: ${at} refused the user ${user} a command the Redis client sends (${refusal.reply})`, { cause })
    case 'credentials': {
      const code = refusal.reply.split(' ')[0]
      const refused = code === 'NOAUTH'
        ? 'requires a password and got none'
        : `refused ${peer.username === undefined ? 'the password' : `the user ${user} and its password`}`
      return new RedisAccessError(`${peer.passwordVariable}: ${at} ${refused} (${code})`, { cause })
    }
  }
}

/** Reports refusals seen on the connection itself: the data nodes, which the entry points lead to. */
function watchConnection (connection: RedisConnection, config: RedisConfig, refuse: (error: RedisAccessError) => void, seen: (error: unknown) => void): () => void {
  const report = (error: unknown, address: string | undefined) => {
    seen(error)
    const refusal = refusalOf(error)
    if (refusal) refuse(accessError(refusal, dataPeer(config, address), error))
  }
  if (connection instanceof Cluster) {
    // The cluster's own 'error' only sums up its nodes' ("Failed to refresh slots cache").
    const onNodeError = (error: unknown, address?: string) => report(error, address)
    connection.on('node error', onNodeError)
    return () => { connection.off('node error', onNodeError) }
  }
  const { sentinels, host, port } = connection.options
  const address = sentinels ? undefined : `${host ?? 'localhost'}:${port ?? 6379}`
  const onError = (error: Error) => {
    // "All sentinels are unreachable … Last error: WRONGPASS …" is the sentinels' refusal, which
    // askEntryPoints reports with the sentinel's address and password variable.
    if (sentinels && error.message.startsWith('All sentinels are unreachable')) {
      seen(error)
      return
    }
    report(error, address)
  }
  connection.on('error', onError)
  return () => { connection.off('error', onError) }
}

const PROBE_TIMEOUT_MS = 2000

/**
 * Asks each sentinel or cluster seed directly, with the connection's own
 * settings and the commands ioredis sends it first: ioredis hides why one
 * refused (a TLS or AUTH failure comes out as "Connection is closed.", a
 * refused CLUSTER INFO as a silent reconnect). One that does not answer is
 * left to the wait.
 */
async function askEntryPoints (connection: RedisConnection, config: RedisConfig, refuse: (error: RedisAccessError) => void): Promise<void> {
  const asks: Array<{ peer: Peer, options: RedisOptions, commands: Array<[string, ...string[]]> }> = []
  if (connection instanceof Cluster && config.mode === 'cluster') {
    for (const { host, port } of config.nodes) {
      asks.push({
        peer: dataPeer(config, `${host}:${port}`),
        options: { ...connection.options.redisOptions, host, port },
        commands: [['CLUSTER', 'SLOTS'], ['CLUSTER', 'INFO']],
      })
    }
  } else if (!(connection instanceof Cluster) && config.mode === 'sentinel') {
    const { sentinelUsername, sentinelPassword, sentinelTLS } = connection.options
    for (const { host, port } of config.sentinels) {
      asks.push({
        peer: sentinelPeer(config, `${host}:${port}`),
        options: {
          host,
          port,
          ...(sentinelUsername ? { username: sentinelUsername } : {}),
          ...(sentinelPassword ? { password: sentinelPassword } : {}),
          ...(sentinelTLS ? { tls: sentinelTLS } : {}),
        },
        commands: [['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', config.name]],
      })
    }
  }
  await Promise.all(asks.map(async ({ peer, options, commands }) => {
    const error = await firstError(options, commands)
    const refusal = refusalOf(error)
    if (refusal) refuse(accessError(refusal, peer, error))
  }))
}

/** Connects once and sends `commands`; resolves with the first error, or undefined when all were answered. */
async function firstError (options: RedisOptions, commands: Array<[string, ...string[]]>): Promise<unknown> {
  const client = new Redis({
    ...options,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: true,
    enableAutoPipelining: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
  })
  let first: unknown
  client.on('error', (error: unknown) => { first ??= error })
  try {
    await client.connect()
    for (const [name, ...args] of commands) await client.call(name, ...args)
    return undefined
  } catch (error) {
    return first ?? error
  } finally {
    client.disconnect()
  }
}

interface CommandUse {
  /** The command as the gateway sends it, with arguments that change nothing of the gateway's. */
  command: [string, ...string[]]
  key?: string
  channel?: string
  /** False for commands a transaction cannot queue: checked with ACL DRYRUN only. */
  queueable?: false
}

const HASH = keyFor.startupCheck('hash')
const STRING = keyFor.startupCheck('string')
const SET = keyFor.startupCheck('set')
const SORTED_SET = keyFor.startupCheck('zset')
const CHECK_KEYS = [HASH, STRING, SET, SORTED_SET]
const UNKNOWN_SCRIPT = '0'.repeat(40)

/**
 * Every command the gateway sends: the session store and its Lua scripts (the
 * commands inside a script are checked against the caller's rights too), the
 * invalidation channel, and @fastify/rate-limit's script (INCR, PEXPIRE, PTTL,
 * GET). ioredis runs scripts with EVALSHA and falls back to EVAL.
 */
export const REQUIRED_COMMANDS: readonly CommandUse[] = [
  { command: ['PING'] },
  { command: ['EVALSHA', UNKNOWN_SCRIPT, '1', HASH], key: HASH },
  { command: ['EVAL', 'return 0', '1', HASH], key: HASH },
  { command: ['HGETALL', HASH], key: HASH },
  { command: ['HGET', HASH, 'v'], key: HASH },
  { command: ['HEXISTS', HASH, 'revoked'], key: HASH },
  { command: ['HSET', HASH, 'v', '0'], key: HASH },
  { command: ['HINCRBY', HASH, 'rr', '1'], key: HASH },
  { command: ['EXISTS', HASH], key: HASH },
  { command: ['PEXPIRE', HASH, '1000'], key: HASH },
  { command: ['DEL', HASH], key: HASH },
  { command: ['ZADD', SORTED_SET, '0', 'm'], key: SORTED_SET },
  { command: ['ZRANGE', SORTED_SET, '0', '-1', 'WITHSCORES'], key: SORTED_SET },
  { command: ['ZREM', SORTED_SET, 'm'], key: SORTED_SET },
  { command: ['ZREMRANGEBYSCORE', SORTED_SET, '-inf', '0'], key: SORTED_SET },
  { command: ['PEXPIREAT', SORTED_SET, '1'], key: SORTED_SET },
  { command: ['SADD', SET, 'm'], key: SET },
  { command: ['SREM', SET, 'm'], key: SET },
  { command: ['SMEMBERS', SET], key: SET },
  { command: ['PTTL', SET], key: SET },
  { command: ['INCR', STRING], key: STRING },
  { command: ['GET', STRING], key: STRING },
  { command: ['SET', STRING, '0', 'PX', '1000', 'NX'], key: STRING },
  { command: ['GETDEL', STRING], key: STRING },
  { command: ['SCAN', '0', 'MATCH', keyFor.allSessions(), 'COUNT', '1'] },
  { command: ['PUBLISH', INVALIDATION_CHANNEL, invalidationMessage.session('startup-check')], channel: INVALIDATION_CHANNEL },
  { command: ['SUBSCRIBE', INVALIDATION_CHANNEL], channel: INVALIDATION_CHANNEL, queueable: false },
  { command: ['MULTI'], queueable: false },
  { command: ['EXEC'], queueable: false },
]

/** Checks the rights of the connection's user on Redis (on every master of a cluster: ACLs are per node). */
async function checkCommands (connection: RedisConnection, peer: Peer): Promise<void> {
  const nodes = connection instanceof Cluster ? connection.nodes('master') : [connection]
  for (const node of nodes) {
    // A cluster connects to its nodes only when it first sends them a command.
    if (node.status === 'wait') await node.connect().catch(() => {})
    const { user, denials } = await deniedCommands(node)
    if (denials.length > 0) {
      throw new RedisAccessError(`${peer.userVariable}: the Redis user "${user ?? peer.username ?? 'default'}" ${describeDenials(denials)} (NOPERM)`)
    }
  }
}

interface Denial {
  use: CommandUse
  /** What was refused: the command itself, the key or channel it names, or a command this Redis does not know. */
  what: 'command' | 'key' | 'channel' | 'unknown'
}

/**
 * The commands the user may not run, checked without running them: with
 * `ACL DRYRUN` when the user may use it (Redis 7), else queued in a
 * transaction that is then discarded (a refused command is refused as it is
 * queued). A command that cannot be checked (the connection dropped) counts as
 * allowed: an outage is not the user's fault.
 */
async function deniedCommands (redis: Redis): Promise<{ user: string | undefined, denials: Denial[] }> {
  const user = await redis.call('ACL', 'WHOAMI').then(String, () => undefined)
  const dryRun = user !== undefined && await redis.call('ACL', 'DRYRUN', user, 'PING').then(reply => reply === 'OK', () => false)
  return { user, denials: dryRun ? await deniedByDryRun(redis, user) : await deniedInDiscardedTransaction(redis) }
}

async function deniedByDryRun (redis: Redis, user: string): Promise<Denial[]> {
  const replies = await send(redis, REQUIRED_COMMANDS.map((use): [string, ...string[]] => ['ACL', 'DRYRUN', user, ...use.command]))
  return REQUIRED_COMMANDS.flatMap((use, index) => {
    const [error, reply] = replies[index] ?? [null, 'OK']
    if (error) return isUnknownCommand(error.message) ? [{ use, what: 'unknown' as const }] : []
    return reply === 'OK' ? [] : [denial(use, String(reply))]
  })
}

async function deniedInDiscardedTransaction (redis: Redis): Promise<Denial[]> {
  const queueable = REQUIRED_COMMANDS.filter(use => use.queueable !== false)
  const replies = await send(redis, [['MULTI'], ...queueable.map(use => use.command), ['DISCARD']])
  const [multiError] = replies[0] ?? [null]
  const denials = deniedIn(queueable, replies.slice(1))
  if (multiError && /^NOPERM/.test(multiError.message)) {
    // Nothing was queued, so the commands ran: on the check's own keys, with no effect beyond them.
    await redis.del(...CHECK_KEYS).catch(() => {})
    return [{ use: { command: ['MULTI'] }, what: 'command' }, ...denials]
  }
  return denials
}

/** Redirections (MOVED in a cluster) and type errors come after the rights check: only NOPERM and unknown commands count. */
function deniedIn (uses: readonly CommandUse[], replies: Array<[Error | null, unknown]>): Denial[] {
  return uses.flatMap((use, index) => {
    const [error] = replies[index] ?? [null]
    if (!error) return []
    if (/^NOPERM/.test(error.message)) return [denial(use, error.message)]
    return isUnknownCommand(error.message) ? [{ use, what: 'unknown' as const }] : []
  })
}

function isUnknownCommand (message: string): boolean {
  return /unknown command|not found/i.test(message)
}

/** Redis says in words what it refused: "… to access the 'k' key", "… one of the channels …", "… to run the 'x' command". */
function denial (use: CommandUse, reason: string): Denial {
  if (use.key !== undefined && /\bkeys?\b/.test(reason)) return { use, what: 'key' }
  if (use.channel !== undefined && /\bchannels?\b/.test(reason)) return { use, what: 'channel' }
  return { use, what: 'command' }
}

/** "may not run EVALSHA, EVAL; may not use keys such as bff:…": one clause per kind of refusal. */
function describeDenials (denials: Denial[]): string {
  const of = (what: Denial['what']) => denials.filter(d => d.what === what).map(d => d.use)
  const clauses: string[] = []
  const commands = [...of('command').map(use => use.command[0]), ...of('unknown').map(use => `${use.command[0]} (unknown to this Redis)`)]
  if (commands.length > 0) clauses.push(`may not run ${commands.join(', ')}`)
  const key = of('key')[0]?.key
  if (key !== undefined) clauses.push(`may not use keys such as ${key}`)
  const channel = of('channel')[0]?.channel
  if (channel !== undefined) clauses.push(`may not use the channel ${channel}`)
  return clauses.join('; ')
}

/** One pipeline: written in one go, so nothing else the connection sends comes in between. */
async function send (redis: Redis, commands: ReadonlyArray<readonly [string, ...string[]]>): Promise<Array<[Error | null, unknown]>> {
  const pipeline = redis.pipeline()
  for (const [name, ...args] of commands) pipeline.call(name, ...args)
  return await pipeline.exec().catch(() => []) ?? []
}
