/**
 * Proxied WebSockets, and ending them with their session.
 *
 * A WebSocket outlives its handshake, the only request the policy saw; a
 * session ended later (logout on another tab, an operator, the IdP's
 * back-channel logout, "log out everywhere", expiry) must not keep it open.
 * Each socket is remembered with its session. When the invalidation channel
 * announces a change to that session or its user, and every `sweepMs` in any
 * case (the channel is optional, and its messages can be lost), the session is
 * read again from the store, and the socket is destroyed if the session is
 * over. A store that cannot answer leaves sockets as they are: the next sweep
 * decides.
 */
import type { Socket } from 'node:net'
import type { ActiveSession } from '../session/sessions.js'

export interface OpenSockets {
  /** Remembers `socket` until it closes; it is destroyed once `session` is over. */
  track (socket: Socket, session: ActiveSession): void
  /** An invalidation message (`s:<handle>`, `u:<sub>`, `*`): re-checks the sessions it names. */
  announce (message: string): void
  readonly size: number
  close (): void
}

export interface OpenSocketsOptions {
  /** The session as the store has it now; undefined when it is over. Throws when the store cannot answer. */
  reload: (session: ActiveSession) => Promise<ActiveSession | undefined>
  sweepMs: number
  onEnded?: (session: ActiveSession) => void
  onCheckFailed?: (error: unknown) => void
}

export function createOpenSockets (options: OpenSocketsOptions): OpenSockets {
  const open = new Map<Socket, ActiveSession>()
  // One check per session at a time, however many sockets and messages name it; a message that
  // arrives during a check gets a check of its own afterwards (the running one may have read too early).
  const checking = new Map<string, boolean>()

  function endSockets (handle: string, session: ActiveSession): void {
    let ended = false
    for (const [socket, tracked] of open) {
      if (tracked.handle !== handle) continue
      open.delete(socket)
      socket.destroy()
      ended = true
    }
    if (ended) options.onEnded?.(session)
  }

  function check (session: ActiveSession): void {
    if (checking.has(session.handle)) {
      checking.set(session.handle, true)
      return
    }
    checking.set(session.handle, false)
    options.reload(session).then(
      (current) => { if (!current) endSockets(session.handle, session) },
      (error: unknown) => options.onCheckFailed?.(error)
    ).finally(() => {
      const again = checking.get(session.handle) === true
      checking.delete(session.handle)
      if (again && [...open.values()].some(tracked => tracked.handle === session.handle)) check(session)
    })
  }

  function checkWhere (matches: (session: ActiveSession) => boolean): void {
    const seen = new Set<string>()
    for (const session of open.values()) {
      if (seen.has(session.handle) || !matches(session)) continue
      seen.add(session.handle)
      check(session)
    }
  }

  const sweep = setInterval(() => checkWhere(() => true), options.sweepMs)
  sweep.unref()

  return {
    track (socket, session) {
      open.set(socket, session)
      socket.once('close', () => open.delete(socket))
    },
    announce (message) {
      if (open.size === 0) return
      if (message.startsWith('s:')) checkWhere(session => session.handle === message.slice(2))
      else if (message.startsWith('u:')) checkWhere(session => session.meta.sub === message.slice(2))
      else checkWhere(() => true)
    },
    get size () {
      return open.size
    },
    close () {
      clearInterval(sweep)
    },
  }
}
