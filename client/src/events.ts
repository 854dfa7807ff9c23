/** A typed event emitter small enough to ship in the browser bundle. */
export type Listener<T> = (event: T) => void

export interface Emitter<Events> {
  /** Calls `listener` on every `type` event; returns the function that stops it. */
  on<K extends keyof Events> (type: K, listener: Listener<Events[K]>): () => void
  emit<K extends keyof Events> (type: K, event: Events[K]): void
}

export function createEmitter<Events> (): Emitter<Events> {
  const listeners = new Map<keyof Events, Set<Listener<never>>>()
  return {
    on (type, listener) {
      let set = listeners.get(type)
      if (!set) listeners.set(type, set = new Set())
      set.add(listener as Listener<never>)
      return () => { set.delete(listener as Listener<never>) }
    },
    emit (type, event) {
      // A copy: a listener may unsubscribe itself (or others) while we iterate.
      for (const listener of [...listeners.get(type) ?? []]) {
        try {
          (listener as Listener<typeof event>)(event)
        } catch (error) {
          // One failing listener must not keep the others (or the client's own bookkeeping) from running.
          queueMicrotask(() => { throw error })
        }
      }
    },
  }
}
