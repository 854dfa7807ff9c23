/**
 * Proxied WebSockets, and ending them with their session.
 *
 * A WebSocket outlives its handshake, the only request the policy saw; a
 * session ended later (logout on another tab, an operator, the IdP's
 * back-channel logout, "log out everywhere", expiry) must not keep it open.
 * Each socket is remembered under its session. When the invalidation channel
 * announces a change to that session or its user, and every `sweepMs` in any
 * case (the channel is optional, and its messages can be lost), the session is
 * read again from the store, and its sockets are destroyed if it is over. A
 * store that cannot answer leaves sockets as they are: the next sweep decides.
 *
 * When the gateway closes, every open WebSocket is closed with 1001 (going
 * away), which tells the browser to reconnect (to another instance) rather
 * than report an error; one whose peer does not complete the close handshake
 * within `closeGraceMs` is destroyed, so it cannot hold the shutdown up.
 */
import type { Socket } from 'node:net'
import type { ActiveSession } from '../session/sessions.js'
import type { Invalidation } from '../session/invalidation.js'

export interface OpenSockets {
  /** Remembers `socket` until it closes; it is destroyed once `session` is over. */
  track (socket: Socket, session: ActiveSession): void
  /** Re-checks the sessions an invalidation names. */
  announce (invalidation: Invalidation): void
  /** Sockets remembered. */
  readonly size: number
  /** Stops re-checking, and closes every remembered WebSocket with 1001 (going away). */
  close (): void
}

export interface OpenSocketsOptions {
  /** The session as the store has it now; undefined when it is over. Throws when the store cannot answer. */
  reload: (session: ActiveSession) => Promise<ActiveSession | undefined>
  sweepMs: number
  onEnded?: (session: ActiveSession) => void
  onCheckFailed?: (error: unknown) => void
  /** How long a WebSocket closed by `close()` may take over its close handshake before it is destroyed; default 2000 ms. */
  closeGraceMs?: number
}

interface Tracked { session: ActiveSession, sockets: Set<Socket> }

const GOING_AWAY = 1001

interface ClosableWebSocket { close (code: number, reason: string): void }

/**
 * The `ws` WebSocket speaking on an upgraded socket. @fastify/http-proxy keeps its WebSocket
 * objects to itself, and on its own close sends a close frame without a code (the browser sees
 * 1005); ws marks the socket with its WebSocket under `Symbol('websocket')`, the one way from here.
 */
function webSocketOn (socket: Socket): ClosableWebSocket | undefined {
  for (const key of Object.getOwnPropertySymbols(socket)) {
    if (key.description !== 'websocket') continue
    const candidate = (socket as unknown as Record<symbol, unknown>)[key]
    if (typeof (candidate as Partial<ClosableWebSocket> | undefined)?.close === 'function') return candidate as ClosableWebSocket
  }
  return undefined
}

export function createOpenSockets (options: OpenSocketsOptions): OpenSockets {
  // By session handle: a message names one session, and most messages name none with a socket here.
  const bySession = new Map<string, Tracked>()
  let size = 0
  // One check per session at a time, however many sockets and messages name it; a message that
  // arrives during a check gets a check of its own afterwards (the running one may have read too early).
  const checking = new Map<string, boolean>()

  function end (handle: string): void {
    const tracked = bySession.get(handle)
    if (!tracked) return
    bySession.delete(handle)
    size -= tracked.sockets.size
    for (const socket of tracked.sockets) socket.destroy()
    options.onEnded?.(tracked.session)
  }

  function check (handle: string): void {
    const tracked = bySession.get(handle)
    if (!tracked) return
    if (checking.has(handle)) {
      checking.set(handle, true)
      return
    }
    checking.set(handle, false)
    options.reload(tracked.session).then(
      (current) => { if (!current) end(handle) },
      (error: unknown) => options.onCheckFailed?.(error)
    ).finally(() => {
      const again = checking.get(handle) === true
      checking.delete(handle)
      if (again) check(handle)
    })
  }

  const sweep = setInterval(() => { for (const handle of bySession.keys()) check(handle) }, options.sweepMs)
  sweep.unref()

  return {
    track (socket, session) {
      let tracked = bySession.get(session.handle)
      if (!tracked) bySession.set(session.handle, tracked = { session, sockets: new Set() })
      const entry = tracked
      entry.sockets.add(socket)
      size += 1
      socket.once('close', () => {
        // Already gone when its session ended (end() counted it out).
        if (bySession.get(session.handle) !== entry || !entry.sockets.delete(socket)) return
        size -= 1
        if (entry.sockets.size === 0) bySession.delete(session.handle)
      })
    },
    announce (invalidation) {
      if (invalidation.kind === 'session') {
        check(invalidation.handle)
        return
      }
      for (const [handle, tracked] of bySession) {
        if (invalidation.kind === 'all' || tracked.session.meta.sub === invalidation.sub) check(handle)
      }
    },
    get size () {
      return size
    },
    close () {
      clearInterval(sweep)
      const closing = [...bySession.values()].flatMap(tracked => [...tracked.sockets])
      for (const socket of closing) {
        const webSocket = webSocketOn(socket)
        if (webSocket) webSocket.close(GOING_AWAY, 'The gateway is shutting down')
        else socket.destroy()
      }
      if (closing.length === 0) return
      const overdue = setTimeout(() => { for (const socket of closing) socket.destroy() }, options.closeGraceMs ?? 2000)
      overdue.unref()
    },
  }
}
