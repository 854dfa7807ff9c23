/**
 * A real Redis Cluster on loopback: private redis-server processes in cluster
 * mode (each in its own temp dir, on free ports), joined with
 * `redis-cli --cluster create`. By default no replicas: three masters share
 * the slots. With `replicasPerMaster`, each master gets replicas that take
 * over when it fails (a failover inside the cluster).
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startRedisServer, type RedisServer } from './redis-server.js'
import { freePort } from './free-port.js'
import type { TlsFiles } from './redis-tls.js'

const REDIS_CLI = '/usr/bin/redis-cli'
const FORM_TIMEOUT_MS = 20_000
const POLL_INTERVAL_MS = 50
const START_ATTEMPTS = 3
const DEFAULT_NODE_TIMEOUT_MS = 2000

const run = promisify(execFile)

export interface RedisClusterOptions {
  /** Number of masters; default 3. */
  masters?: number
  /**
   * Replicas of each master; default 0. `nodes` then holds `masters × (1 + replicasPerMaster)`
   * servers, and forming the cluster waits until every replica has synchronised.
   */
  replicasPerMaster?: number
  /**
   * `cluster-node-timeout`; default 2000 ms. A master unreachable this long counts as failing,
   * and its replica is promoted a moment after the other masters agree.
   */
  nodeTimeoutMs?: number
  /** Join the nodes into a cluster before resolving; default true. With false, call `form()` later. */
  form?: boolean
  /** Append-only file with fsync always, so a node keeps its keys across stop/start. */
  persistence?: boolean
  /**
   * TLS on every node and on the cluster bus (`tls-cluster yes`); `seeds` then names the TLS
   * ports, and nodes tell TLS clients their TLS ports. Plain ports stay open on loopback for
   * the helpers' own clients (and `redis-cli --cluster create`).
   */
  tls?: TlsFiles
  /** ACL users of every node (see `RedisServerOptions.users`). */
  users?: string[]
}

/** One line of `CLUSTER NODES`, as the node asked sees it. */
export interface ClusterNodeView {
  readonly id: string
  /** The server behind it (matched by port); undefined for a node this helper did not start. */
  readonly server: RedisServer | undefined
  readonly role: 'master' | 'replica'
  /** `fail?` (this node cannot reach it) or `fail` (the masters agreed it is down). */
  readonly failing: boolean
  /** The master's id, for a replica. */
  readonly masterId: string | undefined
  /** Whether it serves any slot (a failed master loses its slots to the promoted replica). */
  readonly servesSlots: boolean
}

export interface RedisCluster {
  /**
   * Every server, in the order they were started. Without replicas each one is a master; with
   * them, ask `topology()` who is what (a failover swaps the roles).
   */
  readonly nodes: RedisServer[]
  /** `127.0.0.1:P1,127.0.0.1:P2,…` (the TLS ports with `tls`): the value for REDIS_CLUSTER_NODES. */
  readonly seeds: string
  /** Assigns the slots over every node and resolves once each of them says `cluster_state:ok`. */
  form (): Promise<void>
  /** Resolves once every running node says `cluster_state:ok` (after a node restart, say). */
  waitUntilOk (timeoutMs?: number): Promise<void>
  /** The slot of a key, as the cluster computes it. */
  slotOf (key: string): Promise<number>
  /** The master that serves a key's slot. */
  nodeFor (key: string): Promise<RedisServer>
  /** `CLUSTER NODES` as `from` sees it (by default the first node that answers). */
  topology (from?: RedisServer): Promise<ClusterNodeView[]>
  /** The replicas of `master`, as the cluster knows them now. */
  replicasOf (master: RedisServer): Promise<RedisServer[]>
  /** Resolves once every replica of `master` has acknowledged all that the master had written when called. */
  waitForReplication (master: RedisServer, timeoutMs?: number): Promise<void>
  /** A plain (non-cluster) client of one node, closed with the cluster. */
  client (node: RedisServer): Redis
  /** Stops every node and removes their directories. */
  close (): Promise<void>
}

/**
 * Starts the nodes of a Redis Cluster and (by default) forms it. Register
 * `cluster.close()` as cleanup where you call this; if the test process dies
 * first, the processes are killed by the redis-server helper's exit hook.
 */
export async function startRedisCluster (options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicasPerMaster = options.replicasPerMaster ?? 0
  const count = masters * (1 + replicasPerMaster)
  const nodes: RedisServer[] = []
  const clients = new Map<RedisServer, Redis>()
  try {
    for (let i = 0; i < count; i++) nodes.push(await startNode(options))
  } catch (error) {
    await Promise.allSettled(nodes.map(node => node.close()))
    throw error
  }

  const client = (node: RedisServer): Redis => {
    let redis = clients.get(node)
    if (!redis) {
      redis = new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true })
      redis.on('error', () => {})
      clients.set(node, redis)
    }
    return redis
  }

  // The first node that answers (one may be stopped on purpose).
  const anyNode = async (...command: [string, ...string[]]): Promise<unknown> => {
    let lastError: unknown
    for (const node of nodes) {
      try {
        return await client(node).call(...command)
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  const clusterInfo = async (node: RedisServer): Promise<string> =>
    String(await client(node).call('CLUSTER', 'INFO'))

  const replicationInfo = async (node: RedisServer): Promise<string> => client(node).info('replication')

  const serverAt = (address: string): RedisServer | undefined => {
    // `ip:port@busport[,hostname]`: the port is the plain one, or the TLS one with tls-cluster.
    const port = Number(/:(\d+)@/.exec(address)?.[1])
    return nodes.find(node => node.port === port || node.tlsPort === port)
  }

  const parseNodes = (text: string): ClusterNodeView[] => text.trim().split('\n').map(line => {
    const [id = '', address = '', flags = '', master = '-', , , , , ...slots] = line.trim().split(' ')
    const flagList = flags.split(',')
    return {
      id,
      server: serverAt(address),
      role: flagList.includes('master') ? 'master' : 'replica',
      failing: flagList.includes('fail') || flagList.includes('fail?'),
      masterId: master === '-' ? undefined : master,
      servesSlots: slots.length > 0,
    }
  })

  const topology = async (from?: RedisServer): Promise<ClusterNodeView[]> =>
    parseNodes(String(from ? await client(from).call('CLUSTER', 'NODES') : await anyNode('CLUSTER', 'NODES')))

  const replicasOf = async (master: RedisServer): Promise<RedisServer[]> => {
    const views = await topology()
    const id = views.find(view => view.server === master)?.id
    return views.filter(view => id !== undefined && view.masterId === id && view.server)
      .map(view => view.server!)
  }

  // Every replica linked to its master and caught up with it, so that a failover loses nothing.
  const waitForReplication = async (master: RedisServer, timeoutMs = FORM_TIMEOUT_MS) => {
    const offset = (info: string, field: string) => Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1] ?? -1)
    const target = offset(await replicationInfo(master), 'master_repl_offset')
    const replicas = await replicasOf(master)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const infos = await Promise.all(replicas.map(replicationInfo))
      if (infos.every(info => info.includes('master_link_status:up') && offset(info, 'slave_repl_offset') >= target)) return
      if (Date.now() > deadline) throw new Error(`replicas of 127.0.0.1:${master.port} not caught up within ${timeoutMs} ms:\n${infos.join('\n---\n')}`)
      await delay(POLL_INTERVAL_MS)
    }
  }

  const waitUntilOk = async (timeoutMs = FORM_TIMEOUT_MS) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const states = await Promise.all(nodes.map(node => clusterInfo(node).catch((error: Error) => error.message)))
      // Every node must see the whole cluster, not only itself, before a client may rely on its slot map.
      const ok = states.every(info => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${count}`))
      if (ok) return
      if (Date.now() > deadline) throw new Error(`Redis Cluster not ok within ${timeoutMs} ms:\n${states.join('\n---\n')}`)
      await delay(POLL_INTERVAL_MS)
    }
  }

  // Every node knows every replica's master, and each replica has synchronised: until then a
  // replica could not take over from its master.
  const waitForReplicas = async () => {
    const deadline = Date.now() + FORM_TIMEOUT_MS
    for (;;) {
      const views = await Promise.all(nodes.map(node => topology(node)))
      if (views.every(view => view.filter(node => node.role === 'replica' && node.masterId !== undefined).length === masters * replicasPerMaster)) break
      if (Date.now() > deadline) throw new Error(`Redis Cluster replicas not assigned within ${FORM_TIMEOUT_MS} ms`)
      await delay(POLL_INTERVAL_MS)
    }
    for (const view of await topology()) {
      if (view.role === 'master' && view.server) await waitForReplication(view.server, Math.max(0, deadline - Date.now()))
    }
  }

  const cluster: RedisCluster = {
    nodes,
    seeds: nodes.map(node => `127.0.0.1:${node.tlsPort ?? node.port}`).join(','),
    async form () {
      try {
        await run(REDIS_CLI, ['--cluster', 'create', ...nodes.map(node => `127.0.0.1:${node.port}`),
          '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { timeout: FORM_TIMEOUT_MS })
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string, stderr?: string }
        throw new Error(`redis-cli --cluster create failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: error })
      }
      await waitUntilOk()
      if (replicasPerMaster > 0) await waitForReplicas()
    },
    waitUntilOk,
    slotOf: async (key) => Number(await anyNode('CLUSTER', 'KEYSLOT', key)),
    async nodeFor (key) {
      const slot = await cluster.slotOf(key)
      const slots = await anyNode('CLUSTER', 'SLOTS') as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>
      const owner = slots.find(([from, to]) => slot >= from && slot <= to)?.[2]
      const node = nodes.find(candidate => candidate.port === owner?.[1])
      if (!node) throw new Error(`no node serves slot ${slot} of ${key}`)
      return node
    },
    topology,
    replicasOf,
    waitForReplication,
    client,
    async close () {
      for (const redis of clients.values()) redis.disconnect()
      await Promise.allSettled(nodes.map(node => node.close()))
    },
  }

  if (options.form ?? true) {
    try {
      await cluster.form()
    } catch (error) {
      await cluster.close()
      throw error
    }
  }
  return cluster
}

// The cluster bus needs a second port; the default (port + 10000) may be out of range
// or taken, so each node gets its own free one.
async function startNode (options: RedisClusterOptions): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const busPort = await freePort()
    try {
      return await startRedisServer({
        persistence: options.persistence === true,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.users ? { users: options.users } : {}),
        args: [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(busPort),
          '--cluster-node-timeout', String(options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS),
          // Replicas reach their master on its TLS port, so they must speak TLS to it.
          ...(options.tls ? ['--tls-cluster', 'yes', ...(options.replicasPerMaster ? ['--tls-replication', 'yes'] : [])] : []),
        ],
      })
    } catch (error) {
      if (attempt === START_ATTEMPTS) throw error
    }
  }
}
