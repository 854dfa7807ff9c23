/**
 * The gateway as a real process (`node --import tsx gateway/server.ts`), for
 * what an in-process gateway cannot show: its own RSS, signals, and a clock
 * of its own (CLOCK_OFFSET_MS, applied by ./shifted-clock.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../helpers/free-port.js'
import { gatewayProcessEnv, type RoutePolicyJson } from '../helpers/gateway.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SHIFTED_CLOCK = fileURLToPath(new URL('./shifted-clock.ts', import.meta.url))
const READY_TIMEOUT_MS = 30_000

export interface GatewayProcessOptions {
  port: number
  publicUrl: string
  issuer: string
  redisUrl: string
  policy: RoutePolicyJson
  env?: Record<string, string>
  /** Shift the process' clock (Date) by this much; 0 leaves it alone. */
  clockOffsetMs?: number
  /** The admin listener's port (a load balancer checks readiness there); default: a free one. */
  adminPort?: number
  /** Modules the process loads before the gateway (`node --import`), e.g. test/faults/fatal-on-signal.ts. */
  imports?: string[]
}

export interface GatewayProcess {
  readonly url: string
  readonly adminUrl: string
  readonly pid: number
  /** Its ROUTES_FILE, for tests that change the policy and reload it (SIGHUP). */
  readonly routesFile: string
  /** Resident set size from /proc/<pid>/status, in bytes. */
  rss (): Promise<number>
  /** The last lines the process wrote, for failure messages. */
  output (): string
  /** SIGTERM (a graceful shutdown); resolves with the exit code. */
  stop (): Promise<number | null>
  /** Sends `signal` and returns at once. */
  signal (signal: NodeJS.Signals): void
  /** Resolves with the exit code, and when the process exited (Date.now()). */
  readonly exited: Promise<{ code: number | null, at: number }>
}

const running = new Set<ChildProcess>()
process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })

export async function startGatewayProcess (options: GatewayProcessOptions): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-gateway-process-'))
  const routesFile = join(dir, 'routes.json')
  await writeFile(routesFile, JSON.stringify(options.policy))
  const adminPort = options.adminPort ?? await freePort()
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...gatewayProcessEnv({
      publicUrl: options.publicUrl,
      port: options.port,
      adminPort,
      redisUrl: options.redisUrl,
      issuer: options.issuer,
      routesFile,
      logLevel: process.env.TEST_LOG_LEVEL ?? 'warn',
    }),
    LOGIN_RATE_LIMIT: '100000',
    // No load balancer waits to take it out of rotation, unless a test puts one there (and sets its own).
    SHUTDOWN_DELAY: '0',
    ...options.env,
  }
  const preloads = [...(options.clockOffsetMs ? [SHIFTED_CLOCK] : []), ...(options.imports ?? [])]
  const imports = ['--import', 'tsx', ...preloads.flatMap(module => ['--import', module])]
  const child = spawn(process.execPath, [...imports, 'gateway/server.ts'], {
    cwd: ROOT,
    env: { ...env, ...(options.clockOffsetMs ? { CLOCK_OFFSET_MS: String(options.clockOffsetMs) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString('utf8')).slice(-8192) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = once(child, 'exit').then(async ([code]) => {
    running.delete(child)
    const at = Date.now()
    await rm(dir, { recursive: true, force: true })
    return { code: code as number | null, at }
  })

  const url = `http://127.0.0.1:${options.port}`
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!output.includes('admin listener on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
      throw new Error(`gateway process did not start:\n${output}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }

  return {
    url,
    adminUrl,
    pid: child.pid!,
    routesFile,
    async rss () {
      const status = await readFile(`/proc/${child.pid!}/status`, 'utf8')
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024
    },
    output: () => output,
    async stop () {
      if (child.exitCode === null) child.kill('SIGTERM')
      return (await exited).code
    },
    signal (signal) {
      child.kill(signal)
    },
    exited,
  }
}
