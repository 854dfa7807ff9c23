/**
 * The refresh contender's plan: which of its sessions each load run uses.
 *
 * Every session in a run had its access token expire before the run, so each
 * one's first request makes the gateway refresh it, exactly once: a run is
 * shorter than a token's life, so no session expires twice in one. A few
 * sessions are refreshed just before the run and are in use from its start
 * (`ACTIVE_AT_START`), so the run does not open with every connection waiting
 * on a single session's refresh; the rest arrive at a steady rate through the
 * run (cookie-rotation.ts), each arrival one refresh. A run takes the next
 * sessions of a ring, and a session is used again only once its last token has
 * expired.
 */

/** Sessions refreshed just before a run, in use from its first request. */
export const ACTIVE_AT_START = 10

/** Seconds from a run's start during which sessions arrive: all but its last half second (a quarter of a short run). */
export function arrivalWindowSeconds (runSeconds: number): number {
  return runSeconds - Math.min(0.5, runSeconds / 4)
}

/** Sessions arriving in a run of this length: the first at once, then `perSecond` through the window. */
export function arrivalsPerRun (runSeconds: number, perSecond: number): number {
  return Math.max(1, Math.ceil(arrivalWindowSeconds(runSeconds) * perSecond))
}

/** Every session a run uses: those active from the start and those arriving. */
export function sessionsPerRun (runSeconds: number, perSecond: number): number {
  return ACTIVE_AT_START + arrivalsPerRun(runSeconds, perSecond)
}

export interface TakenSessions {
  cookies: string[]
  /** Positions in the ring, to release them after the run. */
  indexes: number[]
  /** Epoch ms from which every one of them has an expired token. */
  readyAt: number
}

/** The sessions in turn, each with the time it was last used (its token refreshed no later than that). */
export class SessionRing {
  readonly #cookies: readonly string[]
  readonly #lastUsed: number[]
  readonly #restMs: number
  #next = 0

  /** `restMs`: how long after its last use a session's token has surely expired. */
  constructor (cookies: readonly string[], restMs: number, now: number) {
    if (cookies.length === 0) throw new Error('a session ring needs sessions')
    this.#cookies = cookies
    this.#lastUsed = cookies.map(() => now)
    this.#restMs = restMs
  }

  /** The next `count` sessions of the ring; they are the caller's until released. */
  take (count: number): TakenSessions {
    if (count > this.#cookies.length) throw new Error(`a run needs ${count} sessions; the ring has ${this.#cookies.length}`)
    const indexes = Array.from({ length: count }, (_, i) => (this.#next + i) % this.#cookies.length)
    this.#next = (this.#next + count) % this.#cookies.length
    return {
      cookies: indexes.map(i => this.#cookies[i] as string),
      indexes,
      readyAt: Math.max(...indexes.map(i => this.#lastUsed[i] as number)) + this.#restMs,
    }
  }

  /** Marks sessions used until `now`: their tokens were refreshed no later. */
  release (indexes: readonly number[], now: number): void {
    for (const i of indexes) this.#lastUsed[i] = now
  }
}
