/**
 * The load generator, in its own process so it never shares an event loop
 * with a contender: runs one autocannon job per IPC message and answers with
 * a summary. Latencies are taken from every 2xx response exactly, since
 * autocannon's own histogram rounds them to whole milliseconds.
 */
import autocannon from 'autocannon'
import { announceReady, closeOnStop } from './child-side.js'
import { LatencyRecorder, percentileOfSorted } from './percentiles.js'
import type { LoadJob, LoadReply, LoadResult } from './protocol.js'
import { mixSource, rotationSource, sessionPerRequest } from './session-requests.js'

let current: autocannon.Instance | undefined

function run (job: LoadJob): Promise<LoadResult> {
  const latencies = new LatencyRecorder()
  // Many sessions, a cookie picked per request in place of the one of `headers`: at random (f, g) or as they arrive (i).
  const rotation = job.rotation ? rotationSource(job.rotation) : undefined
  const source = job.cookies ? mixSource(job.cookies) : rotation
  const sessions = source ? sessionPerRequest(source, job.headers) : undefined
  return new Promise((resolve, reject) => {
    current = autocannon({
      url: job.url,
      connections: job.connections,
      duration: job.durationSeconds,
      headers: sessions?.headers ?? job.headers,
      expectBody: job.expectBody,
      ...(sessions ? { setupClient: sessions.setupClient } : {}),
    }, (error: unknown, result: autocannon.Result) => {
      current = undefined
      if (error) return reject(error instanceof Error ? error : new Error(String(error)))
      if (sessions && sessions.picks < result.requests.total) {
        return reject(new Error(`only ${sessions.picks} of ${result.requests.total} requests went out with a picked session's cookie`))
      }
      const sorted = latencies.sorted()
      const statusCodes: Record<string, number> = {}
      for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count ?? 0
      resolve({
        type: 'result',
        id: job.id,
        requestsPerSecond: result.requests.average,
        p50Ms: percentileOfSorted(sorted, 50),
        p99Ms: percentileOfSorted(sorted, 99),
        maxMs: percentileOfSorted(sorted, 100),
        total: result.requests.total,
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        mismatches: result.mismatches,
        statusCodes,
        ...rotation ? { sessionsArrived: rotation.arrived } : {},
      })
    })
    current.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.record(responseTime)
    })
  })
}

process.on('message', (message: LoadJob) => {
  if (message.type !== 'load') return
  run(message).then(
    (result) => process.send?.(result satisfies LoadReply),
    (error: unknown) => process.send?.({ type: 'failure', id: message.id, message: (error as Error).message } satisfies LoadReply)
  )
})

announceReady('ipc:')
closeOnStop(async () => { current?.stop() })
