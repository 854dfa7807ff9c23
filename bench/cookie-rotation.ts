/**
 * Which session cookie each request of a refresh-contender run carries. The
 * sessions of `arriving` had their access tokens expire before the run; each
 * is brought in at its time (`perSecond`), and its first request is the next
 * one sent, so a session's refresh happens when it is due, not when a random
 * pick happens to reach it. Every other request picks one of the sessions in
 * use so far, uniformly. So refreshes run steadily through the run, one per
 * arriving session, instead of all at once at its start. The load generator
 * sends the picks as it sends the many-users mixes (session-requests.ts).
 */
import type { CookieRotation } from './protocol.js'

export interface CookiePicker {
  /** Every cookie of the rotation, `active` then `arriving`: what nextIndex() indexes. */
  readonly cookies: readonly string[]
  /** The index in `cookies` of the cookie of the request about to be sent. */
  nextIndex (): number
  /** The cookie of the request about to be sent. */
  next (): string
  /** Sessions of `arriving` brought in so far. */
  readonly arrived: number
}

/** How many of `arriving` are due `elapsedSeconds` after the start: the first at once, then one per 1/perSecond until untilSeconds. */
export function arrivalsDue (rotation: Pick<CookieRotation, 'arriving' | 'perSecond' | 'untilSeconds'>, elapsedSeconds: number): number {
  // Arrival k (from 0) is due at k / perSecond, if that is before untilSeconds.
  const due = elapsedSeconds < rotation.untilSeconds
    ? Math.floor(elapsedSeconds * rotation.perSecond) + 1
    : Math.ceil(rotation.untilSeconds * rotation.perSecond)
  return Math.max(0, Math.min(rotation.arriving.length, due))
}

export function createCookieRotation (
  rotation: CookieRotation,
  now: () => number = () => performance.now(),
  random: () => number = Math.random
): CookiePicker {
  if (rotation.active.length === 0 && rotation.arriving.length === 0) throw new Error('a cookie rotation needs at least one session')
  const started = now()
  const cookies = [...rotation.active, ...rotation.arriving]
  // Indexes into `cookies` of the sessions in use: the active ones, then each newcomer.
  const inUse = rotation.active.map((_, index) => index)
  let arrived = 0
  const nextIndex = () => {
    if (arrived < arrivalsDue(rotation, (now() - started) / 1000) || inUse.length === 0) {
      const index = rotation.active.length + arrived++
      inUse.push(index)
      return index
    }
    return inUse[Math.min(inUse.length - 1, Math.floor(random() * inUse.length))] as number
  }
  return {
    cookies,
    nextIndex,
    next: () => cookies[nextIndex()] as string,
    get arrived () {
      return arrived
    },
  }
}
