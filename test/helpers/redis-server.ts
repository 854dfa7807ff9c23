import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { killOnExit, removeOnExit } from './process-cleanup.js'
import { freePort as anyFreePort } from './free-port.js'
import { tlsSettings, type TlsFiles } from './redis-tls.js'

// Never the system service on 6379: tests get their own servers.
const REDIS_SERVER = '/usr/bin/redis-server'
const SYSTEM_PORT = 6379
const READY_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 10_000
const POLL_INTERVAL_MS = 20
const PROBE_TIMEOUT_MS = 500
const PORT_ATTEMPTS = 5

export interface RedisServerOptions {
  /** Append-only file with fsync on every write, so data survives stop/start and kill/start. */
  persistence?: boolean
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[]
  /**
   * Serve TLS too, on a second free port (`tlsPort`), with these files. The plain port stays
   * open on loopback for the helpers' own probes and clients; give the gateway the TLS port.
   */
  tls?: TlsFiles
  /**
   * ACL users, one rule each, e.g. `bff on >password ~* &* +@all` or, for a user short of a
   * command, `… +@all -evalsha`. The `default` user stays open, for the helpers.
   */
  users?: string[]
}

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** The TLS port, when started with `tls`. */
  readonly tlsPort: number | undefined
  /** The server's private working directory (data files and `redis.log`). */
  readonly dir: string
  /** Starts it again on the same port and directory; resolves once it answers. */
  start(): Promise<void>
  /** SIGTERM, resolving once the process has exited. */
  stop(): Promise<void>
  /** SIGKILL, resolving once the process has exited: a crash. */
  kill(): Promise<void>
  /** SIGSTOP: connections stay open but nothing is answered, as with a stalled server. */
  pause(): void
  /** SIGCONT after pause(). */
  resume(): void
  /** Stops it and removes its directory. */
  close(): Promise<void>
}

/**
 * Starts a private redis-server on a free port of 127.0.0.1, in a fresh
 * temporary directory, and resolves once it answers. Register
 * `server.close()` as cleanup where you call this.
 */
export async function startRedisServer (options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-redis-'))
  removeOnExit.add(dir)
  let tlsPort: number | undefined
  const argsFor = (port: number) => serverArgs(port, tlsPort, dir, options)

  let port = 0
  let child: ChildProcess | undefined
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort()
    if (options.tls) tlsPort = await freePort()
    try {
      child = await launch(argsFor(port), port, dir)
    } catch (err) {
      // Someone else may have taken the port between our probe and Redis binding it.
      if (!(err instanceof PortTaken) || attempt === PORT_ATTEMPTS) {
        await rm(dir, { recursive: true, force: true })
        removeOnExit.forget(dir)
        throw err
      }
    }
  }

  let paused = false
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    tlsPort,
    dir,
    async start () {
      if (child !== undefined && isAlive(child)) throw new Error(`redis-server on port ${port} is already running`)
      child = await launch(argsFor(port), port, dir)
      paused = false
    },
    async stop () {
      if (child === undefined || !isAlive(child)) return
      // A stopped process would only act on SIGTERM once continued.
      if (paused) server.resume()
      child.kill('SIGTERM')
      if (!await exited(child, STOP_TIMEOUT_MS)) {
        child.kill('SIGKILL')
        await exited(child, STOP_TIMEOUT_MS)
      }
    },
    async kill () {
      if (child === undefined || !isAlive(child)) return
      child.kill('SIGKILL')
      await exited(child, STOP_TIMEOUT_MS)
      paused = false
    },
    pause () {
      child?.kill('SIGSTOP')
      paused = true
    },
    resume () {
      child?.kill('SIGCONT')
      paused = false
    },
    async close () {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
      removeOnExit.forget(dir)
    },
  }
  return server
}

function serverArgs (port: number, tlsPort: number | undefined, dir: string, options: RedisServerOptions): string[] {
  const persistence = options.persistence === true
    ? ['--appendonly', 'yes', '--appendfsync', 'always']
    : ['--appendonly', 'no']
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--logfile', join(dir, 'redis.log'),
    '--daemonize', 'no',
    '--save', '',
    ...persistence,
    ...(options.tls && tlsPort !== undefined ? tlsSettings(options.tls, tlsPort).flatMap(([name, value]) => [`--${name}`, value]) : []),
    // redis-server joins the words after `--user` into one `user` directive.
    ...(options.users ?? []).flatMap(rule => ['--user', ...rule.split(/\s+/)]),
    ...options.args ?? [],
  ]
}

class PortTaken extends Error {
  override name = 'PortTaken'
}

async function launch (args: string[], port: number, dir: string): Promise<ChildProcess> {
  // Configuration errors go to stderr, before the log file is open.
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  killOnExit(child)
  let spawnError: Error | undefined
  child.once('error', (err) => { spawnError = err })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4096) })

  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (spawnError !== undefined) throw new Error(`cannot run ${REDIS_SERVER}`, { cause: spawnError })
    if (!isAlive(child)) {
      const output = `${stderr}${await logTail(dir)}`
      const message = `redis-server on port ${port} exited at start:\n${output}`
      throw output.includes('Address already in use') ? new PortTaken(message) : new Error(message)
    }
    if (child.pid !== undefined && await answers(port, child.pid)) return child
    await delay(POLL_INTERVAL_MS)
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server on port ${port} did not answer within ${READY_TIMEOUT_MS} ms:\n${await logTail(dir)}`)
}

function isAlive (child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

async function exited (child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isAlive(child)) return true
  const timeout = AbortSignal.timeout(timeoutMs)
  try {
    await once(child, 'exit', { signal: timeout })
    return true
  } catch {
    return false
  }
}

async function freePort (): Promise<number> {
  for (;;) {
    const port = await anyFreePort()
    if (port !== SYSTEM_PORT) return port
  }
}

// Ready means: this very process answers on the port (not another server that
// took it) and has finished loading its data. INFO is answered while loading.
function answers (port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let reply = ''
    const finish = (ready: boolean) => {
      socket.destroy()
      resolve(ready)
    }
    socket.setEncoding('utf8')
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false))
    socket.once('error', () => finish(false))
    socket.once('close', () => finish(false))
    socket.once('connect', () => socket.write('INFO\r\n'))
    socket.on('data', (chunk: string) => {
      reply += chunk
      const info = bulkString(reply)
      if (info === null) return finish(false)
      if (info !== undefined) finish(info.includes(`\r\nprocess_id:${pid}\r\n`) && info.includes('\r\nloading:0\r\n'))
    })
  })
}

// A RESP bulk string: its text once complete, undefined while incomplete,
// null for any other reply (an error such as -LOADING).
function bulkString (reply: string): string | null | undefined {
  if (reply === '') return undefined
  if (!reply.startsWith('$')) return null
  const headerEnd = reply.indexOf('\r\n')
  if (headerEnd === -1) return undefined
  const length = Number(reply.slice(1, headerEnd))
  const start = headerEnd + 2
  return reply.length >= start + length ? reply.slice(start, start + length) : undefined
}

async function logTail (dir: string): Promise<string> {
  try {
    const log = await readFile(join(dir, 'redis.log'), 'utf8')
    return log.trimEnd().split('\n').slice(-20).join('\n')
  } catch {
    return ''
  }
}
