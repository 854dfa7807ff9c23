/**
 * The child's half of the process protocol: say "ready" once listening, and
 * close cleanly when the orchestrator asks (SIGTERM) or goes away (IPC closed),
 * so `--cpu-prof` gets to write its profile.
 */
import type { ReadyMessage } from './protocol.js'

export function announceReady (url: string): void {
  const message: ReadyMessage = { type: 'ready', url }
  if (!process.send) throw new Error('this script is started by bench/run.ts (it needs an IPC channel)')
  process.send(message)
}

export function closeOnStop (close: () => Promise<unknown>): void {
  let closing = false
  const stop = () => {
    if (closing) return
    closing = true
    const deadline = setTimeout(() => process.exit(1), 10_000)
    deadline.unref()
    close().then(() => process.exit(0), (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
      process.exit(1)
    })
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  process.once('disconnect', stop)
}

/** A required environment variable of a child script. */
export function requiredEnv (name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}
