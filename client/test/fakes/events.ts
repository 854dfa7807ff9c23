/** Awaiting a client's events instead of sleeping. */
import type { BffEvents } from '../../src/auth-state.js'
import type { BffClientCore } from '../../src/client-core.js'

/** Resolves with the next `type` event of `client`. */
export function nextEvent<K extends keyof BffEvents> (client: Pick<BffClientCore, 'on'>, type: K): Promise<BffEvents[K]> {
  return new Promise(resolve => {
    const stop = client.on(type, (event) => {
      stop()
      resolve(event)
    })
  })
}

/** Every `type` event of `client` from now on. */
export function recordEvents<K extends keyof BffEvents> (client: Pick<BffClientCore, 'on'>, type: K): Array<BffEvents[K]> {
  const seen: Array<BffEvents[K]> = []
  client.on(type, (event) => { seen.push(event) })
  return seen
}
