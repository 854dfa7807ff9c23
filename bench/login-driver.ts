/**
 * The login driver, in its own process so it shares an event loop with neither
 * the gateway nor the IdP: runs one login job per IPC message, with a fixed
 * number of sign-ins in flight, each starting the moment the one before it on
 * its lane ends, until the job's time is up.
 */
import { announceReady, closeOnStop } from './child-side.js'
import type { LoginFailure, LoginJob, LoginResult, SignInTarget } from './login-protocol.js'
import { LatencyRecorder, percentileOfSorted } from './percentiles.js'
import { directSignIn, signInThroughGateway } from './sign-in.js'

/** Set when the orchestrator stops this process: lanes end after their current sign-in. */
const state = { stopping: false }
/** Direct clients, discovered once per target (their discovery and key fetch are no part of a sign-in). */
const directClients = new Map<string, Promise<() => Promise<void>>>()

function signInFor (target: SignInTarget): Promise<() => Promise<void>> {
  if (target.mode === 'gateway') return Promise.resolve(async () => { await signInThroughGateway(target.gatewayUrl) })
  const key = `${target.issuer} ${target.clientId}`
  let signIn = directClients.get(key)
  if (!signIn) {
    signIn = directSignIn(target)
    directClients.set(key, signIn)
  }
  return signIn
}

async function run (job: LoginJob): Promise<LoginResult> {
  const signIn = await signInFor(job.target)
  const latencies = new LatencyRecorder()
  let failures = 0
  let firstError: string | undefined
  const started = performance.now()
  const deadline = started + job.durationSeconds * 1000
  const lane = async () => {
    while (!state.stopping && performance.now() < deadline) {
      const begun = performance.now()
      try {
        await signIn()
        const ended = performance.now()
        if (ended <= deadline) latencies.record(ended - begun)
      } catch (error) {
        failures += 1
        firstError ??= (error as Error).message.slice(0, 500)
      }
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, lane))
  const sorted = latencies.sorted()
  return {
    type: 'login-result',
    id: job.id,
    requestsPerSecond: latencies.count / job.durationSeconds,
    p50Ms: percentileOfSorted(sorted, 50),
    p99Ms: percentileOfSorted(sorted, 99),
    maxMs: percentileOfSorted(sorted, 100),
    total: latencies.count,
    non2xx: 0,
    errors: failures,
    timeouts: 0,
    mismatches: 0,
    statusCodes: {},
    ...firstError === undefined ? {} : { firstError },
  }
}

process.on('message', (message: LoginJob) => {
  if (message.type !== 'login') return
  run(message).then(
    (result) => process.send?.(result),
    (error: unknown) => process.send?.({ type: 'failure', id: message.id, message: (error as Error).message } satisfies LoginFailure)
  )
})

announceReady('ipc:')
closeOnStop(async () => { state.stopping = true })
