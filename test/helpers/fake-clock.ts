/**
 * A clock that moves only when a test moves it, for the modules that take a
 * `now` function (session manager, memory store, session cache, refresher):
 * expiry is reached by advancing it, never by waiting.
 */
export interface FakeClock {
  /** Epoch milliseconds; pass as the module's `now`. */
  readonly now: () => number
  advance (ms: number): void
}

/** Starts at a fixed instant, so failures repeat exactly. */
export function fakeClock (start = Date.UTC(2030, 0, 1)): FakeClock {
  let at = start
  return {
    now: () => at,
    advance (ms) { at += ms },
  }
}
