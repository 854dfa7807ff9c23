/**
 * A real HAProxy (Debian's `haproxy` package; .ci/run installs it) in front of
 * gateway processes, checking them as deploy/haproxy.cfg does: round robin,
 * an instance out of rotation when its admin `/readyz` says it is draining (or
 * does not answer), and the stock retry on a failed connection. Its stats page gives the test
 * the balancer's own counts: connection and response errors, retries,
 * redispatches, and what each instance served.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../helpers/free-port.js'
import { killOnExit, removeOnExit } from '../helpers/process-cleanup.js'
import { until } from './traffic.js'

const HAPROXY = process.env.HAPROXY_PATH ?? '/usr/sbin/haproxy'

export interface BalancedServer {
  name: string
  /** The gateway's public port, where requests go. */
  port: number
  /** Its admin port, where the balancer checks readiness. */
  adminPort: number
}

export interface LoadBalancerOptions {
  port: number
  servers: BalancedServer[]
  /** Time between readiness checks of each server. */
  checkIntervalMs: number
}

/** One server's line of HAProxy's stats (`/stats;csv`). */
export interface ServerStats {
  name: string
  /** `UP`, `DOWN`, or a transition such as `UP 1/2`. */
  status: string
  /** Requests (sessions) sent to it. */
  sent: number
  connectionErrors: number
  responseErrors: number
  retries: number
  redispatches: number
  /** 5xx answers, whether the server's or HAProxy's own. */
  http5xx: number
}

export interface LoadBalancer {
  readonly url: string
  servers (): Promise<ServerStats[]>
  /** Resolves once every named server is `UP` in the balancer's eyes. */
  waitUntilUp (names: readonly string[], timeoutMs?: number): Promise<void>
  close (): Promise<void>
}

function configuration (options: LoadBalancerOptions, statsPort: number): string {
  return `
global
  maxconn 1024

defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout check 2s
  retries 2
  option redispatch

frontend public
  bind 127.0.0.1:${options.port}
  default_backend gateways

frontend stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats

backend gateways
  balance roundrobin
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect ! string draining
  default-server inter ${options.checkIntervalMs}ms fall 2 rise 2
${options.servers.map(s => `  server ${s.name} 127.0.0.1:${s.port} check port ${s.adminPort}`).join('\n')}
`
}

export async function startLoadBalancer (options: LoadBalancerOptions): Promise<LoadBalancer> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-haproxy-'))
  removeOnExit.add(dir)
  const statsPort = await freePort()
  const file = join(dir, 'haproxy.cfg')
  await writeFile(file, configuration(options, statsPort))
  // -db: in the foreground, not as a daemon, so it is ours to stop.
  const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  killOnExit(child)
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString('utf8')).slice(-4096) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))

  const servers = async (): Promise<ServerStats[]> => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text()
    const [header = '', ...lines] = csv.trim().split('\n')
    const columns = header.replace(/^# /, '').split(',')
    const rows = lines.map(line => Object.fromEntries(line.split(',').map((value, i) => [columns[i], value])))
    return rows.filter(row => row.pxname === 'gateways' && row.svname !== 'BACKEND').map(row => ({
      name: row.svname ?? '',
      status: row.status ?? '',
      sent: Number(row.stot),
      connectionErrors: Number(row.econ),
      responseErrors: Number(row.eresp),
      retries: Number(row.wretr),
      redispatches: Number(row.wredis),
      http5xx: Number(row.hrsp_5xx),
    }))
  }

  const close = async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
    await rm(dir, { recursive: true, force: true })
    removeOnExit.forget(dir)
  }
  const answering = await until(() => servers().then(() => true, () => false), 10_000, 50)
  if (!answering) {
    await close()
    throw new Error(`haproxy did not start:\n${output}`)
  }

  return {
    url: `http://127.0.0.1:${options.port}`,
    servers,
    async waitUntilUp (names, timeoutMs = 15_000) {
      const up = await until(async () => {
        const stats = await servers()
        return names.every(name => stats.find(s => s.name === name)?.status === 'UP')
      }, timeoutMs, 50)
      if (!up) throw new Error(`not UP within ${timeoutMs} ms: ${JSON.stringify(await servers())}`)
    },
    close,
  }
}
