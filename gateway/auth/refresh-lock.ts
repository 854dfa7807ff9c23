/**
 * The session's one refresh lock: everything that spends or replaces a
 * session's tokens (a refresh of its own token, a refresh or an exchange for
 * one API) runs holding it, one job at a time per session across every
 * instance, so a refresh token is never spent twice.
 *
 *  1. in process, concurrent callers of one session and job share one run;
 *  2. across instances, a lease in the store, renewed while the job runs, and
 *     a re-read after winning it (another instance may have done the job
 *     already); losers wait for the winner's write, woken by the invalidation
 *     channel when there is one, re-reading the session at least every
 *     `pollIntervalMs`;
 *  3. jobs write with compare-and-set on the session's version (theirs to do),
 *     so a writer that lost its lease can never put an old refresh token back.
 */
import { randomUUID } from 'node:crypto'
import { IdpUnavailable, SessionExpired } from '../errors.js'
import { keyFor } from '../session/keys.js'
import type { Leases } from '../session/store.js'
import type { ActiveSession, SessionAccess } from '../session/sessions.js'

/** One thing to do to a session's tokens under its lock. */
export interface SessionJob {
  /** Names the job: concurrent callers of one session with the same name share one run in process. */
  readonly name: string
  /** Whether `session` already has what the job would get; asked again after every wait. */
  done (session: ActiveSession): boolean
  /** Does it, holding the lock (the session just re-read); resolves with the session as written. */
  run (current: ActiveSession): Promise<ActiveSession>
}

export interface SessionLockObserver {
  lockWait (): void
  failure (reason: 'session_gone' | 'wait_timeout'): void
}

export interface SessionLockOptions {
  sessions: Pick<SessionAccess, 'reload'>
  leases: Leases
  observer: SessionLockObserver
  lockLeaseMs?: number
  /** How long a request waits for another instance's job before giving up with 502. */
  maxWaitMs?: number
  pollIntervalMs?: number
  /** Waits up to `ms` for news of a session's change (the invalidation channel); a plain sleep without one. */
  waitForChange?: (handle: string, ms: number) => Promise<void>
  now?: () => number
}

export interface SessionLock {
  /** Resolves with the session once `job` is done (by this caller or another); throws SessionExpired or IdpUnavailable. */
  run (session: ActiveSession, job: SessionJob): Promise<ActiveSession>
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export function createSessionLock (options: SessionLockOptions): SessionLock {
  const { sessions, leases, observer } = options
  const now = options.now ?? Date.now
  const leaseMs = options.lockLeaseMs ?? 5000
  const maxWaitMs = options.maxWaitMs ?? 20_000
  const pollMs = options.pollIntervalMs ?? 25
  const waitForChange = options.waitForChange ?? ((_handle: string, ms: number) => sleep(ms))
  const inFlight = new Map<string, Promise<ActiveSession>>()

  async function reloadLive (session: ActiveSession): Promise<ActiveSession> {
    const current = await sessions.reload(session)
    if (!current) {
      observer.failure('session_gone')
      throw new SessionExpired()
    }
    return current
  }

  async function acrossInstances (session: ActiveSession, job: SessionJob): Promise<ActiveSession> {
    const lockName = keyFor.refreshLock(session.handle)
    const deadline = now() + maxWaitMs
    let waited = false
    for (;;) {
      const owner = randomUUID()
      if (await leases.acquireLock(lockName, owner, leaseMs)) {
        const renewal = setInterval(() => {
          leases.renewLock(lockName, owner, leaseMs).catch(() => {})
        }, Math.max(50, Math.floor(leaseMs / 3)))
        try {
          const current = await reloadLive(session)
          if (job.done(current)) return current
          return await job.run(current)
        } finally {
          clearInterval(renewal)
          await leases.releaseLock(lockName, owner).catch(() => {})
        }
      }
      if (!waited) {
        observer.lockWait()
        waited = true
      }
      await waitForChange(session.handle, pollMs)
      const current = await reloadLive(session)
      if (job.done(current)) return current
      if (now() > deadline) {
        observer.failure('wait_timeout')
        throw new IdpUnavailable()
      }
    }
  }

  return {
    run (session, job) {
      const key = `${session.handle} ${job.name}`
      let shared = inFlight.get(key)
      if (!shared) {
        shared = acrossInstances(session, job).finally(() => inFlight.delete(key))
        inFlight.set(key, shared)
      }
      return shared
    },
  }
}
