/** The orchestrator's handle on the load-generator process: one job at a time. */
import type { BenchChild } from './processes.js'
import type { CookieMix } from './cookie-mix.js'
import type { CookieRotation, LoadJob, LoadReply, LoadResult } from './protocol.js'

export interface LoadRequest {
  url: string
  headers: Record<string, string>
  connections: number
  durationSeconds: number
  expectBody: string
  cookies?: CookieMix | undefined
  rotation?: CookieRotation | undefined
}

export interface LoadClient {
  run (request: LoadRequest): Promise<LoadResult>
}

export function createLoadClient (generator: BenchChild): LoadClient {
  let nextId = 1
  return {
    run (request) {
      const { cookies, rotation, ...rest } = request
      if (cookies && rotation) return Promise.reject(new Error('a load run picks its cookies from a mix or from a rotation, not both'))
      const job: LoadJob = { type: 'load', id: nextId++, ...rest, ...(cookies ? { cookies } : {}), ...(rotation ? { rotation } : {}) }
      const child = generator.process
      return new Promise((resolve, reject) => {
        const onMessage = (message: LoadReply) => {
          if (message.id !== job.id) return
          cleanup()
          if (message.type === 'result') resolve(message)
          else reject(new Error(`load generator: ${message.message}`))
        }
        const onExit = () => {
          cleanup()
          reject(new Error('the load generator exited during a run'))
        }
        function cleanup () {
          child.off('message', onMessage)
          child.off('exit', onExit)
        }
        child.on('message', onMessage)
        child.once('exit', onExit)
        child.send(job)
      })
    },
  }
}
