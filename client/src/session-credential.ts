/**
 * The native session credential in the app's secure store, read once and
 * kept in memory. It is worthless without the key it is bound to, but it is
 * still a bearer of the session, so it lives nowhere else.
 */
import type { SecureStore } from './secure-store.js'

/** What `POST /bff/native/session` answers. */
export interface NativeSession {
  session: string
  expiresAt: string
  idleExpiresAt: string
}

export function isNativeSession (value: unknown): value is NativeSession {
  const candidate = value as Partial<NativeSession> | null
  return typeof candidate === 'object' && candidate !== null && typeof candidate.session === 'string' && candidate.session !== '' &&
    typeof candidate.expiresAt === 'string' && typeof candidate.idleExpiresAt === 'string'
}

export interface SessionCredential {
  get (): Promise<NativeSession | undefined>
  set (session: NativeSession): Promise<void>
  /** Forgets the credential, unless it has been replaced by another than `session` meanwhile. */
  clear (session?: string): Promise<void>
}

export function createSessionCredential (store: SecureStore, key: string): SessionCredential {
  let loaded: Promise<NativeSession | undefined> | undefined
  const read = async () => {
    const text = await store.get(key)
    if (!text) return undefined
    try {
      const value: unknown = JSON.parse(text)
      return isNativeSession(value) ? value : undefined
    } catch {
      return undefined
    }
  }
  const get = () => {
    if (!loaded) {
      loaded = read()
      // A store that failed once (locked keychain) is asked again next time.
      loaded.catch(() => { loaded = undefined })
    }
    return loaded
  }
  return {
    get,
    async set (session) {
      await store.set(key, JSON.stringify(session))
      loaded = Promise.resolve(session)
    },
    async clear (session) {
      const current = await get()
      if (session !== undefined && current?.session !== session) return
      loaded = Promise.resolve(undefined)
      await store.delete(key)
    },
  }
}
