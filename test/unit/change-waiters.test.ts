/**
 * Waiting for a session to change: an invalidation message naming it wakes
 * its waiters at once (long before their poll interval); others keep waiting.
 */
import { describe, expect, it } from 'vitest'
import { createChangeWaiters } from '../../gateway/session/change-waiters.js'
import { parseInvalidation } from '../../gateway/session/invalidation.js'

const LONG = 60_000

/** Whether `promise` has settled by the time queued callbacks have run. */
async function settled (promise: Promise<unknown>): Promise<boolean> {
  let done = false
  promise.then(() => { done = true }, () => { done = true })
  await new Promise(resolve => setImmediate(resolve))
  return done
}

describe('waiting for a session to change', () => {
  it('a message naming the session wakes every waiter on it, and only those', async () => {
    const waiters = createChangeWaiters()
    const a1 = waiters.wait('a', LONG)
    const a2 = waiters.wait('a', LONG)
    const b = waiters.wait('b', LONG)
    waiters.announce({ kind: 'session', handle: 'a' })
    expect(await settled(Promise.all([a1, a2]))).toBe(true)
    expect(await settled(b)).toBe(false)
    waiters.announce({ kind: 'session', handle: 'b' })
    expect(await settled(b)).toBe(true)
  })

  it.each(['u:alice', '*'])('a message about a user or everyone (%s) wakes all waiters: each re-reads its session', async (message) => {
    const waiters = createChangeWaiters()
    const both = Promise.all([waiters.wait('a', LONG), waiters.wait('b', LONG)])
    waiters.announce(parseInvalidation(message))
    expect(await settled(both)).toBe(true)
  })

  it('without a message, the wait ends after its interval', async () => {
    const waiters = createChangeWaiters()
    const started = Date.now()
    await waiters.wait('a', 30)
    expect(Date.now() - started).toBeGreaterThanOrEqual(25)
  })

  it('a waiter woken once is gone: a later message finds nobody, and a new wait is new', async () => {
    const waiters = createChangeWaiters()
    const first = waiters.wait('a', LONG)
    waiters.announce({ kind: 'session', handle: 'a' })
    await first
    const second = waiters.wait('a', LONG)
    expect(await settled(second)).toBe(false)
    waiters.announce({ kind: 'session', handle: 'a' })
    expect(await settled(second)).toBe(true)
  })
})
