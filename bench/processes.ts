/**
 * Starts the benchmark's child processes (`node --import tsx bench/<script>.ts`)
 * and waits for their "ready" message; stops them with SIGTERM, then SIGKILL.
 * Whatever happens to the orchestrator, none of them outlives it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ReadyMessage } from './protocol.js'

const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 15_000

export interface BenchChild {
  readonly name: string
  readonly url: string
  readonly process: ChildProcess
  stop (): Promise<void>
}

export interface StartChildOptions {
  /** The child's variables, on top of PATH, HOME and TMPDIR only: nothing else leaks in from the shell. */
  env?: Record<string, string>
  /** Node flags placed before the script, e.g. `--cpu-prof`. */
  nodeArgs?: string[]
}

const running = new Set<ChildProcess>()
let cleanupRegistered = false

function registerCleanup (): void {
  if (cleanupRegistered) return
  cleanupRegistered = true
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL')
  })
}

function baseEnv (): Record<string, string> {
  const base: Record<string, string> = {}
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name]
    if (value !== undefined) base[name] = value
  }
  return base
}

function isAlive (child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

export function scriptPath (name: string): string {
  return fileURLToPath(new URL(`./${name}.ts`, import.meta.url))
}

/** Spawns `bench/<script>.ts` with an IPC channel and resolves once it said "ready". */
export async function startChild (script: string, options: StartChildOptions = {}): Promise<BenchChild> {
  registerCleanup()
  const child = spawn(process.execPath, [...options.nodeArgs ?? [], '--import', 'tsx', scriptPath(script)], {
    env: { ...baseEnv(), ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  running.add(child)
  child.once('exit', () => running.delete(child))

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${script} did not get ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
    const onMessage = (message: unknown) => {
      const ready = message as Partial<ReadyMessage>
      if (ready.type !== 'ready' || typeof ready.url !== 'string') return
      cleanup()
      resolve(ready.url)
    }
    const onExit = (code: number | null, signal: string | null) => fail(new Error(`${script} exited before it was ready (code ${code}, signal ${signal})`))
    const onError = (error: Error) => fail(new Error(`cannot start ${script}`, { cause: error }))
    function cleanup () {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      child.off('error', onError)
    }
    function fail (error: Error) {
      cleanup()
      child.kill('SIGKILL')
      reject(error)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.once('error', onError)
  })

  return {
    name: script,
    url,
    process: child,
    async stop () {
      if (!isAlive(child)) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timeout = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timeout)
    },
  }
}
