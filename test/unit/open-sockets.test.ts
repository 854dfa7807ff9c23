/**
 * Open WebSockets end with their session: the registry re-reads a socket's
 * session when a message names it (or its user, or everyone) and on a timer,
 * and destroys the socket once the session is over. Real TCP sockets over
 * loopback stand in for the upgraded connections.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { createOpenSockets, type OpenSockets } from '../../gateway/proxy/open-sockets.js'
import type { ActiveSession } from '../../gateway/session/sessions.js'

const servers: Server[] = []
const registries: OpenSockets[] = []
afterEach(() => {
  for (const registry of registries.splice(0)) registry.close()
  for (const server of servers.splice(0)) server.close()
})

/** The server side of a fresh loopback connection. */
async function serverSocket (): Promise<Socket> {
  const server = createServer()
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  client.on('error', () => {})
  const [socket] = await accepted
  return socket
}

const session = (handle: string, sub: string) => ({ handle, meta: { sub } }) as unknown as ActiveSession

/** A registry whose store says the sessions in `over` have ended. */
function registry (over: Set<string>, options: { sweepMs?: number, failing?: boolean } = {}) {
  const reloads: string[] = []
  const failures: unknown[] = []
  const sockets = createOpenSockets({
    sweepMs: options.sweepMs ?? 60_000,
    reload: async (s) => {
      reloads.push(s.handle)
      if (options.failing) throw new Error('store down')
      return over.has(s.handle) ? undefined : s
    },
    onCheckFailed: (error) => failures.push(error),
  })
  registries.push(sockets)
  return { sockets, reloads, failures }
}

describe('open WebSockets and their sessions', () => {
  it('a message naming a session re-reads it and destroys its sockets once it is over; others stay', async () => {
    const over = new Set<string>()
    const { sockets, reloads } = registry(over)
    const [a1, a2, b] = [await serverSocket(), await serverSocket(), await serverSocket()]
    sockets.track(a1, session('a', 'alice'))
    sockets.track(a2, session('a', 'alice'))
    sockets.track(b, session('b', 'bob'))
    over.add('a')
    sockets.announce({ kind: 'session', handle: 'a' })
    await vi.waitFor(() => expect(a1.destroyed && a2.destroyed).toBe(true))
    expect(reloads).toEqual(['a'])
    expect(b.destroyed).toBe(false)
    expect(sockets.size).toBe(1)
    // Their 'close' events come later and must not count them out twice.
    await vi.waitFor(() => expect(a1.closed && a2.closed).toBe(true))
    expect(sockets.size).toBe(1)
  })

  it('a message naming a user re-reads that user\'s sessions; "*" re-reads everyone\'s', async () => {
    const { sockets, reloads } = registry(new Set())
    sockets.track(await serverSocket(), session('a', 'alice'))
    sockets.track(await serverSocket(), session('b', 'bob'))
    sockets.announce({ kind: 'user', sub: 'bob' })
    await vi.waitFor(() => expect(reloads).toEqual(['b']))
    sockets.announce({ kind: 'all' })
    await vi.waitFor(() => expect([...reloads].sort()).toEqual(['a', 'b', 'b']))
  })

  it('re-reads every session on the timer too, with no message at all', async () => {
    const { sockets } = registry(new Set(['a']), { sweepMs: 50 })
    const socket = await serverSocket()
    sockets.track(socket, session('a', 'alice'))
    await vi.waitFor(() => expect(socket.destroyed).toBe(true), { timeout: 1000 })
  })

  it('keeps the socket when the store cannot answer, and says so', async () => {
    const { sockets, failures } = registry(new Set(['a']), { failing: true })
    const socket = await serverSocket()
    sockets.track(socket, session('a', 'alice'))
    sockets.announce({ kind: 'session', handle: 'a' })
    await vi.waitFor(() => expect(failures).toHaveLength(1))
    expect(socket.destroyed).toBe(false)
  })

  it('a message during a check gets a check of its own afterwards', async () => {
    const over = new Set<string>()
    let release: () => void = () => {}
    const reloads: string[] = []
    const sockets = createOpenSockets({
      sweepMs: 60_000,
      reload: async (s) => {
        reloads.push(s.handle)
        const live = !over.has(s.handle)
        // The first read sees the session still live and answers late; the revocation lands meanwhile.
        if (reloads.length === 1) await new Promise<void>(resolve => { release = resolve })
        return live ? s : undefined
      },
    })
    registries.push(sockets)
    const socket = await serverSocket()
    sockets.track(socket, session('a', 'alice'))
    sockets.announce({ kind: 'session', handle: 'a' })
    await vi.waitFor(() => expect(reloads).toHaveLength(1))
    over.add('a')
    sockets.announce({ kind: 'session', handle: 'a' })
    release()
    await vi.waitFor(() => expect(socket.destroyed).toBe(true))
    expect(reloads).toEqual(['a', 'a'])
  })

  it('forgets a socket once it closes', async () => {
    const { sockets } = registry(new Set())
    const socket = await serverSocket()
    sockets.track(socket, session('a', 'alice'))
    socket.destroy()
    await vi.waitFor(() => expect(sockets.size).toBe(0))
  })
})

/** A WebSocket accepted by a `ws` server: its server-side raw socket, and the peer's end as a bare TCP socket. */
async function webSocketPair (): Promise<{ serverSide: Socket, peer: Socket }> {
  const server = createHttpServer()
  const webSockets = new WebSocketServer({ noServer: true })
  const accepted = new Promise<Socket>(resolve => {
    server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      webSockets.handleUpgrade(request, socket, head, () => resolve(socket))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  servers.push(server)
  const peer = connect((server.address() as { port: number }).port, '127.0.0.1')
  peer.on('error', () => {})
  peer.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  const serverSide = await accepted
  await once(peer, 'data')
  return { serverSide, peer }
}

describe('closing the registry (the gateway closes)', () => {
  it('closes each WebSocket with 1001 (going away), and the peer completes the close', async () => {
    const { sockets } = registry(new Set())
    const server = createHttpServer()
    const webSockets = new WebSocketServer({ server })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    webSockets.on('connection', (_ws, request) => sockets.track(request.socket as Socket, session('a', 'alice')))
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`)
    await once(client, 'open')
    await vi.waitFor(() => expect(sockets.size).toBe(1))
    sockets.close()
    const [code] = await once(client, 'close') as [number]
    expect(code).toBe(1001)
    await vi.waitFor(() => expect(sockets.size).toBe(0))
  })

  it('destroys a WebSocket whose peer does not answer the close within the grace period', async () => {
    const closeGraceMs = 100
    const sockets = createOpenSockets({ sweepMs: 60_000, reload: async (s) => s, closeGraceMs })
    registries.push(sockets)
    const { serverSide, peer } = await webSocketPair()
    sockets.track(serverSide, session('a', 'alice'))
    const frames: Buffer[] = []
    peer.on('data', (chunk: Buffer) => frames.push(chunk))
    const closedAt = Date.now()
    sockets.close()
    await once(peer, 'close')
    // A close frame (FIN, opcode 8) with code 1001; the peer never answered it, and the connection ended anyway.
    const frame = Buffer.concat(frames)
    expect(frame[0]).toBe(0x88)
    expect(frame.readUInt16BE(2)).toBe(1001)
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(closeGraceMs - 10)
  })

  it('destroys a socket that carries no WebSocket', async () => {
    const { sockets } = registry(new Set())
    const socket = await serverSocket()
    sockets.track(socket, session('a', 'alice'))
    sockets.close()
    expect(socket.destroyed).toBe(true)
  })
})
