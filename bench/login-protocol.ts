/** What the orchestrator and the login driver (login-driver.ts) say to each other. */
import type { LoadResult } from './protocol.js'
import type { DirectClient } from './sign-in.js'

export type SignInTarget =
  | { mode: 'gateway', gatewayUrl: string }
  | ({ mode: 'direct' } & DirectClient)

export interface LoginJob {
  type: 'login'
  id: number
  target: SignInTarget
  /** Sign-ins in flight at once, each in its own fresh browser. */
  concurrency: number
  durationSeconds: number
}

/**
 * A LoadResult whose "requests" are whole sign-ins: `requestsPerSecond` is sign-ins per second
 * that completed within the run, the percentiles are of one sign-in each, `errors` counts failed
 * sign-ins. A sign-in still in flight at the end is finished but not counted.
 */
export interface LoginResult extends Omit<LoadResult, 'type'> {
  type: 'login-result'
  /** The first failure's message, when there was one. */
  firstError?: string
}

export interface LoginFailure {
  type: 'failure'
  id: number
  message: string
}
