/**
 * A real Redis Sentinel deployment on loopback: a master, its replicas and one
 * or more sentinels watching it, each a private process on a free port in its
 * own temp dir. Helpers trigger a failover and wait until every sentinel
 * reports the new master.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startRedisServer, type RedisServer } from './redis-server.js'
import { freePort } from './free-port.js'
import { killOnExit, removeOnExit } from './process-cleanup.js'
import { tlsSettings, type TlsFiles } from './redis-tls.js'

const REDIS_SERVER = '/usr/bin/redis-server'
const READY_TIMEOUT_MS = 15_000
const STOP_TIMEOUT_MS = 10_000
const POLL_INTERVAL_MS = 50
const START_ATTEMPTS = 3

export interface RedisSentinelOptions {
  /** The master name sentinels monitor; default `mymaster`. */
  name?: string
  /** Replicas of the master; default 1. */
  replicas?: number
  /** Sentinels; default 1. With more, they discover each other before this resolves. */
  sentinels?: number
  /** `sentinel down-after-milliseconds`; default 1000. */
  downAfterMs?: number
  /** `sentinel failover-timeout`; default 5000. */
  failoverTimeoutMs?: number
  /**
   * TLS for everything the gateway reaches: the data servers, replication and the sentinels
   * (each on a TLS port of its own; `sentinelList` then names those). Plain ports stay open on
   * loopback for the helpers' own clients.
   */
  tls?: TlsFiles
  /** ACL users of every data server (see `RedisServerOptions.users`). */
  users?: string[]
  /** The sentinels' own password (`requirepass`), as managed Sentinel deployments have. */
  sentinelPassword?: string
}

export interface SentinelProcess {
  readonly port: number
  /** The TLS port, when the set was started with `tls`. */
  readonly tlsPort: number | undefined
  readonly dir: string
  /** False between stop() and start(); the set's queries skip stopped sentinels. */
  readonly running: boolean
  /** SIGTERM, resolving once the process has exited. */
  stop (): Promise<void>
  /** Starts it again on the same port, with the configuration it has rewritten since. */
  start (): Promise<void>
}

export interface RedisSentinelSet {
  readonly name: string
  /** Every data server, the initial master first. */
  readonly servers: RedisServer[]
  readonly sentinels: SentinelProcess[]
  /** `127.0.0.1:S1,127.0.0.1:S2,…` (the TLS ports with `tls`): the value for REDIS_SENTINELS. */
  readonly sentinelList: string
  /** A plain client of one data server, closed with the set. */
  client (server: RedisServer): Redis
  /** A plain client of one sentinel (with the sentinels' password), closed with the set. */
  sentinelClient (sentinel: SentinelProcess): Redis
  /** The master every running sentinel reports; waits (briefly) while they disagree. */
  currentMaster (): Promise<RedisServer>
  /** The data servers that are currently replicas of `master`. */
  replicasOf (master: RedisServer): RedisServer[]
  /**
   * Resolves once `master` has `count` online replicas and every sentinel knows
   * them as healthy, so a failover has somewhere to go.
   */
  waitForReplicas (master: RedisServer, count: number, timeoutMs?: number): Promise<void>
  /** `SENTINEL FAILOVER` (promote a replica now); resolves with the new master once every sentinel reports it. */
  failover (): Promise<RedisServer>
  /** Resolves with the new master once every running sentinel reports a master other than `previous` and it acts as one. */
  waitForNewMaster (previous: RedisServer, timeoutMs?: number): Promise<RedisServer>
  /** Stops every process and removes their directories. */
  close (): Promise<void>
}

async function waitUntil (what: string, check: () => Promise<boolean>, timeoutMs: number, detail: () => Promise<string> = async () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check().catch(() => false)) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms\n${await detail().catch(() => '')}`)
    await delay(POLL_INTERVAL_MS)
  }
}

/** `INFO replication` as a map. */
async function replicationInfo (redis: Redis): Promise<Map<string, string>> {
  const text = await redis.info('replication')
  return new Map(text.split('\r\n').filter(line => line.includes(':')).map(line => {
    const at = line.indexOf(':')
    return [line.slice(0, at), line.slice(at + 1)] as [string, string]
  }))
}

/** A reply of `SENTINEL REPLICAS` / `SENTINEL SENTINELS`: a list of flat field/value lists. */
function records (reply: unknown): Array<Record<string, string>> {
  return (reply as string[][]).map(fields => {
    const record: Record<string, string> = {}
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!
    return record
  })
}

/**
 * Starts a master, its replicas and the sentinels, and resolves once the
 * replicas are in sync and every sentinel knows the replicas (and the other
 * sentinels). Register `set.close()` as cleanup where you call this.
 */
export async function startRedisSentinelSet (options: RedisSentinelOptions = {}): Promise<RedisSentinelSet> {
  const name = options.name ?? 'mymaster'
  const servers: RedisServer[] = []
  const sentinels: SentinelProcess[] = []
  const clients = new Map<number, Redis>()

  const clientOf = (port: number, password?: string): Redis => {
    let redis = clients.get(port)
    if (!redis) {
      redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true, commandTimeout: 2000, ...(password ? { password } : {}) })
      redis.on('error', () => {})
      clients.set(port, redis)
    }
    return redis
  }
  const closeAll = async () => {
    for (const redis of clients.values()) redis.disconnect()
    await Promise.allSettled([...sentinels.map(s => s.stop()), ...servers.map(s => s.close())])
    await Promise.allSettled(sentinels.map(s => rm(s.dir, { recursive: true, force: true })))
    for (const s of sentinels) removeOnExit.forget(s.dir)
  }

  const { tls, sentinelPassword } = options
  const dataServer = (args: string[] = []) => startRedisServer({
    ...(tls ? { tls } : {}),
    ...(options.users ? { users: options.users } : {}),
    args: [...(tls ? ['--tls-replication', 'yes'] : []), ...args],
  })
  try {
    const master = await dataServer()
    servers.push(master)
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      servers.push(await dataServer(['--replicaof', '127.0.0.1', String(announcedPort(master))]))
    }
    const config = [
      `sentinel monitor ${name} 127.0.0.1 ${announcedPort(master)} 1`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 5000}`,
      // Sentinels ask each other (failover votes) with this password.
      ...(sentinelPassword ? [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`] : []),
      // With TLS, sentinels reach the data servers and each other over TLS too.
      ...(tls ? ['tls-replication yes'] : []),
    ]
    for (let i = 0; i < (options.sentinels ?? 1); i++) sentinels.push(await startSentinel(config, tls, sentinelPassword))
  } catch (error) {
    await closeAll()
    throw error
  }

  // Sentinels report the ports the data servers announce: the TLS ones with TLS.
  const byPort = (port: number) => servers.find(server => announcedPort(server) === port)
  const sentinelClient = (sentinel: SentinelProcess) => clientOf(sentinel.port, sentinelPassword)

  const up = () => sentinels.filter(sentinel => sentinel.running)

  const reportedMasterPorts = () => Promise.all(up().map(async sentinel => {
    const reply = await sentinelClient(sentinel).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string] | null
    return reply ? Number(reply[1]) : undefined
  }))

  const describeState = async () => {
    const lines: string[] = [`sentinels report master ports ${(await reportedMasterPorts().catch(() => [])).join(', ')}`]
    for (const server of servers) {
      const info = await replicationInfo(clientOf(server.port)).catch((error: Error) => new Map([['error', error.message]]))
      lines.push(`${server.port}: ${[...info].map(([k, v]) => `${k}=${v}`).join(' ')}`)
    }
    return lines.join('\n')
  }

  const set: RedisSentinelSet = {
    name,
    servers,
    sentinels,
    sentinelList: sentinels.map(s => `127.0.0.1:${s.tlsPort ?? s.port}`).join(','),
    client: (server) => clientOf(server.port),
    sentinelClient,
    async currentMaster () {
      let master: RedisServer | undefined
      await waitUntil('sentinels did not agree on a master', async () => {
        const ports = await reportedMasterPorts()
        master = byPort(ports[0] ?? -1)
        return master !== undefined && ports.every(port => byPort(port ?? -1) === master)
      }, 5000, describeState)
      return master!
    },
    replicasOf (master) {
      return servers.filter(server => server !== master)
    },
    async waitForReplicas (master, count, timeoutMs = READY_TIMEOUT_MS) {
      await waitUntil(`${master.port} did not get ${count} healthy replicas`, async () => {
        const info = await replicationInfo(clientOf(master.port))
        const online = [...info].filter(([key, value]) => /^slave\d+$/.test(key) && value.includes('state=online')).length
        if (info.get('role') !== 'master' || online < count) return false
        for (const sentinel of up()) {
          const known = records(await sentinelClient(sentinel).call('SENTINEL', 'REPLICAS', name))
          const healthy = known.filter(r => r.flags === 'slave' && r['master-link-status'] === 'ok' && r['master-port'] === String(announcedPort(master)))
          if (healthy.length < count) return false
          if (sentinels.length > 1) {
            const peers = records(await sentinelClient(sentinel).call('SENTINEL', 'SENTINELS', name))
            if (peers.length < sentinels.length - 1) return false
          }
        }
        return true
      }, timeoutMs, describeState)
    },
    async failover () {
      const previous = await set.currentMaster()
      await sentinelClient(up()[0]!).call('SENTINEL', 'FAILOVER', name)
      return set.waitForNewMaster(previous)
    },
    async waitForNewMaster (previous, timeoutMs = READY_TIMEOUT_MS) {
      let next: RedisServer | undefined
      await waitUntil('no new master was reported', async () => {
        const ports = await reportedMasterPorts()
        next = byPort(ports[0] ?? -1)
        if (!next || next === previous || !ports.every(port => byPort(port ?? -1) === next)) return false
        return (await replicationInfo(clientOf(next.port))).get('role') === 'master'
      }, timeoutMs, describeState)
      return next!
    },
    close: closeAll,
  }

  try {
    await set.waitForReplicas(servers[0]!, servers.length - 1)
  } catch (error) {
    await closeAll()
    throw error
  }
  return set
}

/** The port a data server is known by to sentinels and replicas. */
function announcedPort (server: RedisServer): number {
  return server.tlsPort ?? server.port
}

async function startSentinel (monitor: string[], tls: TlsFiles | undefined, password: string | undefined): Promise<SentinelProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-sentinel-'))
  removeOnExit.add(dir)
  const configFile = join(dir, 'sentinel.conf')
  let port = 0
  let tlsPort: number | undefined
  let child: ChildProcess | undefined
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort()
    if (tls) tlsPort = await freePort()
    await writeFile(configFile, [
      `port ${port}`,
      'bind 127.0.0.1',
      'daemonize no',
      `dir ${dir}`,
      `logfile ${join(dir, 'sentinel.log')}`,
      ...(tls && tlsPort !== undefined ? tlsSettings(tls, tlsPort).map(([name, value]) => `${name} ${value}`) : []),
      ...monitor,
      '',
    ].join('\n'))
    try {
      child = await launchSentinel(configFile, port, dir, password)
    } catch (error) {
      if (attempt === START_ATTEMPTS) throw error
    }
  }

  return {
    port,
    tlsPort,
    dir,
    get running () {
      return child !== undefined && isAlive(child)
    },
    async stop () {
      if (child === undefined || !isAlive(child)) return
      child.kill('SIGTERM')
      if (!await exited(child, STOP_TIMEOUT_MS)) {
        child.kill('SIGKILL')
        await exited(child, STOP_TIMEOUT_MS)
      }
    },
    async start () {
      if (child !== undefined && isAlive(child)) throw new Error(`sentinel on port ${port} is already running`)
      child = await launchSentinel(configFile, port, dir, password)
    },
  }
}

async function launchSentinel (configFile: string, port: number, dir: string, password: string | undefined): Promise<ChildProcess> {
  // The configuration file must come first; the sentinel rewrites it as it learns.
  const child = spawn(REDIS_SERVER, [configFile, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] })
  killOnExit(child)
  let spawnError: Error | undefined
  child.once('error', (error) => { spawnError = error })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4096) })

  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (spawnError !== undefined) throw new Error(`cannot run ${REDIS_SERVER}`, { cause: spawnError })
    if (!isAlive(child)) throw new Error(`sentinel on port ${port} exited at start:\n${stderr}${await logTail(dir)}`)
    // Ready means this very process answers as a sentinel (not another server that took the port).
    const info = await probeInfo(port, password)
    if (info.includes(`process_id:${child.pid}\r\n`) && info.includes('redis_mode:sentinel')) return child
    await delay(POLL_INTERVAL_MS)
  }
  child.kill('SIGKILL')
  throw new Error(`sentinel on port ${port} did not answer within ${READY_TIMEOUT_MS} ms:\n${await logTail(dir)}`)
}

async function probeInfo (port: number, password: string | undefined): Promise<string> {
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500, commandTimeout: 500, ...(password ? { password } : {}) })
  probe.on('error', () => {})
  try {
    return await probe.info('server')
  } catch {
    return ''
  } finally {
    probe.disconnect()
  }
}

function isAlive (child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

async function exited (child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isAlive(child)) return true
  try {
    await once(child, 'exit', { signal: AbortSignal.timeout(timeoutMs) })
    return true
  } catch {
    return false
  }
}

async function logTail (dir: string): Promise<string> {
  try {
    return (await readFile(join(dir, 'sentinel.log'), 'utf8')).trimEnd().split('\n').slice(-20).join('\n')
  } catch {
    return ''
  }
}
