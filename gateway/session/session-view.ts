/**
 * How a session is shown to its user and to operators: named by its public
 * handle, never by anything that could be used as a cookie.
 */
import type { StoredSession } from './store.js'

export interface SessionView {
  id: string
  createdAt: string
  lastSeenAt: string
  ip: string
  userAgent: string
}

export function viewOf (session: StoredSession): SessionView {
  return {
    id: session.handle,
    createdAt: new Date(session.meta.createdAt).toISOString(),
    lastSeenAt: new Date(session.lastSeenAt).toISOString(),
    ip: session.meta.ip,
    // A native app names its device; that says more to its user than the app's HTTP client.
    userAgent: session.meta.deviceName ?? session.meta.userAgent,
  }
}

/** Newest activity first: the device list a person expects. */
export function byLastSeen (a: StoredSession, b: StoredSession): number {
  return b.lastSeenAt - a.lastSeenAt
}
