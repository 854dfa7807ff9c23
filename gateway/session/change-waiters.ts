/**
 * Waiting for a session to change, woken by the invalidation channel.
 *
 * An instance that finds another instance refreshing a session's tokens has to
 * wait for the new tokens to land. It polls the store on a short interval; with
 * the invalidation channel, the winner's write (`s:<handle>`) wakes it at once,
 * so the poll is only the safety net for a lost message.
 */
import type { Invalidation } from './invalidation.js'

export interface ChangeWaiters {
  /** Resolves when a message names the session (or its user, or everyone), or after `ms`. */
  wait (handle: string, ms: number): Promise<void>
  announce (invalidation: Invalidation): void
}

export function createChangeWaiters (): ChangeWaiters {
  const waiting = new Map<string, Set<() => void>>()

  function wake (wakers: Iterable<() => void>): void {
    for (const wakeUp of [...wakers]) wakeUp()
  }

  return {
    wait (handle, ms) {
      return new Promise<void>(resolve => {
        let wakers = waiting.get(handle)
        if (!wakers) waiting.set(handle, wakers = new Set())
        const wakeUp = () => {
          clearTimeout(timer)
          wakers.delete(wakeUp)
          if (wakers.size === 0 && waiting.get(handle) === wakers) waiting.delete(handle)
          resolve()
        }
        const timer = setTimeout(wakeUp, ms)
        wakers.add(wakeUp)
      })
    },
    announce (invalidation) {
      if (waiting.size === 0) return
      if (invalidation.kind === 'session') {
        const wakers = waiting.get(invalidation.handle)
        if (wakers) wake(wakers)
        return
      }
      // A user's sessions or everyone's: the handles do not say whose they are, so wake all; each re-reads.
      for (const wakers of [...waiting.values()]) wake(wakers)
    },
  }
}
