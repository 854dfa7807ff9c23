/**
 * The two steps of a graceful shutdown, on an in-process gateway (the timing
 * between them, driven by SIGTERM, is tested on real processes in
 * test/faults/shutdown.fault.ts): `drain()` fails readiness at once while the
 * public listener goes on serving, every answer closing its connection; then
 * `close()` ends open WebSockets with 1001 (going away).
 */
import { once } from 'node:events'
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import type { RoutePolicyJson } from '../helpers/gateway.js'

function policy (upstream: string): RoutePolicyJson {
  return {
    routes: [
      { prefix: '/live', upstream, websocket: true, allow: [{ methods: ['GET'], path: '/ws/echo', roles: ['user'] }] },
      { prefix: '/api', upstream, allow: [{ methods: ['GET'], path: '/orders', roles: ['user'] }] },
    ],
  }
}

let stack: Stack
let alice: SignedInUser
beforeAll(async () => {
  stack = await startStack({ policy })
  alice = await signIn(stack.publicUrl)
})
afterAll(async () => { await stack?.close() })

interface Answer { status: number, connection: string | undefined, reusedSocket: boolean, socketClosed: Promise<unknown> }

/** A GET through `agent`, telling whether it went on a connection the agent already had. */
function get (agent: Agent, path: string): Promise<Answer> {
  const { port } = new URL(stack.publicUrl)
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port: Number(port), path, agent, headers: { cookie: alice.cookie } }, (response: IncomingMessage) => {
      // Taken now: once the answer has ended, a keep-alive agent detaches the socket from it.
      const socket = response.socket
      const socketClosed = new Promise(resolve => socket.once('close', resolve))
      response.resume()
      response.once('end', () => resolve({
        status: response.statusCode ?? 0,
        connection: response.headers.connection,
        reusedSocket: request.reusedSocket,
        socketClosed,
      }))
    })
    request.once('error', reject)
    request.end()
  })
}

async function openWebSocket (): Promise<WebSocket> {
  const socket = new WebSocket(`${stack.publicUrl.replace(/^http/, 'ws')}/live/ws/echo`, { headers: { cookie: alice.cookie, origin: stack.publicUrl } })
  await once(socket, 'message')
  return socket
}

describe('a draining gateway', () => {
  it('fails /readyz at once, and goes on serving, every answer closing its connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const before = await get(agent, '/api/orders')
      expect(before).toMatchObject({ status: 200, connection: 'keep-alive' })
      expect((await fetch(`${stack.gateway.adminUrl}/readyz`)).status).toBe(200)

      stack.gateway.gateway.drain()

      const readiness = await fetch(`${stack.gateway.adminUrl}/readyz`)
      expect(readiness.status).toBe(503)
      expect(await readiness.json()).toEqual({ status: 'draining' })
      // The keep-alive connection opened before is served once more, and closed after its answer.
      const onOpenConnection = await get(agent, '/api/orders')
      expect(onOpenConnection).toMatchObject({ status: 200, connection: 'close', reusedSocket: true })
      await onOpenConnection.socketClosed
      // New connections are still accepted and served.
      const onNewConnection = await get(agent, '/api/orders')
      expect(onNewConnection).toMatchObject({ status: 200, connection: 'close', reusedSocket: false })
      const health = await fetch(`${stack.publicUrl}/healthz`)
      expect(health.status).toBe(200)
      expect(health.headers.get('connection')).toBe('close')
    } finally {
      agent.destroy()
    }
  })
})

describe('closing the gateway', () => {
  it('closes open WebSockets with 1001 (going away), and the close does not wait for them', async () => {
    const sockets = [await openWebSocket(), await openWebSocket()]
    const closes = sockets.map(socket => once(socket, 'close') as Promise<[number, Buffer]>)
    const startedAt = Date.now()
    await stack.gateway.close()
    const codes = (await Promise.all(closes)).map(([code]) => code)
    expect(codes).toEqual([1001, 1001])
    expect(Date.now() - startedAt).toBeLessThan(2000)
  })
})
