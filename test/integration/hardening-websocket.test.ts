/**
 * WebSocket upgrades through the gateway: only on routes with
 * `"websocket": true`, only with a session, an allowed Origin and a GET rule
 * for the path; the upstream handshake carries the bearer token and never the
 * browser's cookie. Refused handshakes get the usual JSON error and the
 * upstream sees nothing.
 */
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN, type RoutePolicyJson } from '../helpers/gateway.js'

const BODY_LIMIT = 4096

let stack: Stack
let alice: SignedInUser
let wsUrl: string

function policy (upstream: string): RoutePolicyJson {
  return {
    routes: [
      {
        prefix: '/live',
        upstream,
        websocket: true,
        allow: [
          { methods: ['GET'], path: '/ws/echo', roles: ['user'] },
          { methods: ['GET'], path: '/ws/admin', roles: ['admin'] },
        ],
      },
      { prefix: '/api', upstream, allow: [{ methods: ['GET'], path: '/ws/echo', roles: ['user'] }] },
    ],
  }
}

beforeAll(async () => {
  stack = await startStack({ policy, gatewayEnv: { PROXY_BODY_LIMIT: String(BODY_LIMIT) } })
  alice = await signIn(stack.publicUrl)
  wsUrl = stack.publicUrl.replace(/^http/, 'ws')
})
afterAll(async () => { await stack?.close() })
beforeEach(() => { stack.api.clear() })

interface Handshake {
  socket?: WebSocket
  /** The first message (the upstream's report of its handshake). */
  hello?: { user: string, url: string, cookie: string | null }
  refused?: { status: number, body: unknown }
}

async function connect (path: string, headers: Record<string, string>): Promise<Handshake> {
  const socket = new WebSocket(`${wsUrl}${path}`, { headers })
  return new Promise((resolve, reject) => {
    socket.once('message', (data) => resolve({ socket, hello: JSON.parse(String(data)) }))
    socket.once('unexpected-response', (_request, response: IncomingMessage) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({ refused: { status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined } })
      })
    })
    socket.once('error', reject)
  })
}

const asAlice = () => ({ cookie: alice.cookie, origin: stack.publicUrl })

describe('an allowed WebSocket', () => {
  it('is proxied with the bearer token and without the cookie, and echoes', async () => {
    const { socket, hello } = await connect('/live/ws/echo?room=1', asAlice())
    try {
      expect(hello).toEqual({ user: 'alice', url: '/ws/echo?room=1', cookie: null })
      const handshake = stack.api.received.at(-1)!
      expect(handshake.headers.authorization).toMatch(/^Bearer eyJ/)
      expect(handshake.headers.cookie).toBeUndefined()
      expect(handshake.headers['x-forwarded-for']).toBe('127.0.0.1')
      socket!.send('ping over the gateway')
      const [echoed] = await once(socket!, 'message')
      expect(String(echoed)).toBe('ping over the gateway')
    } finally {
      socket?.close()
    }
  })

  it('reaches the upstream at the canonical path', async () => {
    const { socket, hello } = await connect('/live/ws/%65cho', asAlice())
    socket?.close()
    expect(hello?.url).toBe('/ws/echo')
  })

  it('closes a connection whose message exceeds the body limit', async () => {
    const { socket } = await connect('/live/ws/echo', asAlice())
    socket!.send('m'.repeat(BODY_LIMIT + 1))
    const [code] = await once(socket!, 'close')
    expect(code).toBe(1009)
  })
})

describe('an open WebSocket whose session ends', () => {
  const admin = (path: string, method: string) =>
    fetch(`${stack.gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
  const sessionId = async (user: SignedInUser) => {
    const response = await fetch(`${stack.publicUrl}/bff/sessions`, { headers: { cookie: user.cookie } })
    return ((await response.json()) as { sessions: Array<{ id: string, current: boolean }> }).sessions.find(s => s.current)?.id
  }
  const ends: Array<[how: string, end: (user: SignedInUser) => Promise<Response>]> = [
    ['the user logs out (in another tab)', (user) => fetch(`${stack.publicUrl}/bff/logout`, {
      method: 'POST', headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken },
    })],
    ['an operator revokes that session', async (user) => admin(`/admin/sessions/${await sessionId(user)}`, 'DELETE')],
    ['an operator logs the user out everywhere', () => admin('/admin/users/bob/sessions', 'DELETE')],
  ]

  it.each(ends)('is closed within a second when %s, and another session\'s socket stays open', async (_how, end) => {
    const [bob, other] = [await signIn(stack.publicUrl, 'bob'), alice]
    const doomed = await connect('/live/ws/echo', { cookie: bob.cookie, origin: stack.publicUrl })
    const kept = await connect('/live/ws/echo', { cookie: other.cookie, origin: stack.publicUrl })
    try {
      const closed = once(doomed.socket!, 'close')
      const ending = await end(bob)
      expect(ending.status).toBe(200)
      const started = Date.now()
      await closed
      expect(Date.now() - started).toBeLessThan(1000)
      // The other session's socket still carries messages both ways.
      kept.socket!.send('still here')
      const [echo] = await once(kept.socket!, 'message')
      expect(String(echo)).toContain('still here')
    } finally {
      doomed.socket?.terminate()
      kept.socket?.close()
    }
  })
})

type Row = [name: string, path: string, headers: () => Record<string, string>, status: number, code: string]

const refused: Row[] = [
  ['no session', '/live/ws/echo', () => ({ origin: stack.publicUrl }), 401, 'unauthenticated'],
  ['a forged cookie', '/live/ws/echo', () => ({ cookie: 'bff=forged', origin: stack.publicUrl }), 401, 'unauthenticated'],
  ['no Origin', '/live/ws/echo', () => ({ cookie: alice.cookie }), 403, 'csrf'],
  ['another site\'s Origin', '/live/ws/echo', () => ({ ...asAlice(), origin: 'https://evil.example' }), 403, 'csrf'],
  ['Origin: null', '/live/ws/echo', () => ({ ...asAlice(), origin: 'null' }), 403, 'csrf'],
  ['Sec-Fetch-Site: cross-site', '/live/ws/echo', () => ({ ...asAlice(), 'sec-fetch-site': 'cross-site' }), 403, 'csrf'],
  ['a path no GET rule allows', '/live/ws/other', asAlice, 403, 'forbidden'],
  ['a path for admins only', '/live/ws/admin', asAlice, 403, 'forbidden'],
  ['a route without websocket: true', '/api/ws/echo', asAlice, 403, 'forbidden'],
  ['an unknown prefix', '/nowhere/ws/echo', asAlice, 404, 'not_found'],
  ['a path parameter', '/live/ws/echo;jsessionid=1', asAlice, 400, 'invalid_path'],
  ['an encoded slash', '/live/ws%2fecho', asAlice, 400, 'invalid_path'],
]

describe('refused WebSocket handshakes', () => {
  it.each(refused)('with %s (%s) is refused, upstream untouched', async (_name, path, headers, status, code) => {
    const result = await connect(path, headers())
    result.socket?.close()
    expect(result.refused).toEqual({ status, body: { error: code, message: expect.any(String) } })
    expect(stack.api.received).toEqual([])
  })
})
