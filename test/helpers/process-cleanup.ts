/**
 * Whatever a test forgets, no server process it started outlives the test
 * process, and no temp directory stays behind. Vitest ends its workers with
 * SIGTERM, which skips 'exit' listeners, hence both.
 */
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

const running = new Set<ChildProcess>()
const directories = new Set<string>()
let registered = false

function cleanUp (): void {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of directories) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 })
    } catch {
      // The OS cleans temp dirs eventually; failing here would hide the real result.
    }
  }
}

function register (): void {
  if (registered) return
  registered = true
  process.once('exit', cleanUp)
  process.once('SIGTERM', () => {
    cleanUp()
    // End as SIGTERM would have, unless someone else has taken charge of it.
    if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM')
  })
}

/** Kills the child when the test process ends, unless it exited first. */
export function killOnExit (child: ChildProcess): void {
  register()
  running.add(child)
  child.once('exit', () => running.delete(child))
}

/** Removes the directory when the test process ends; `forget` once it is removed already. */
export const removeOnExit = {
  add (dir: string): void {
    register()
    directories.add(dir)
  },
  forget (dir: string): void {
    directories.delete(dir)
  },
}
