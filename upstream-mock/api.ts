/**
 * A token-only resource server: every route but /public/* wants
 * `Authorization: Bearer <JWT access token>` from the IdP, checked against its
 * JWKS (signature, iss, aud, exp, typ at+jwt). It knows nothing of cookies and
 * sets a stray one on every response, which the gateway must not pass on.
 * `/ws/echo` is a WebSocket echo behind the same bearer check.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'
import { WebSocketServer } from 'ws'
import { RestartableListener } from './listener.js'
import { urlHost } from './url-host.js'

export interface UpstreamApiOptions {
  /** The IdP's issuer identifier; tokens must carry it as `iss`. */
  issuer: string
  /** Expected `aud`; default http://127.0.0.1:4001. */
  audience?: string
  host?: string
  /** Default 0 (any free port). */
  port?: number
  /** Default: jwks_uri from the issuer's discovery document, fetched on first use. */
  jwksUri?: string
  /** Seconds of leeway on exp/nbf/iat; default 5. */
  clockToleranceSeconds?: number
}

export interface ReceivedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body?: unknown
  at: number
}

export interface UpstreamApi {
  readonly url: string
  readonly port: number
  /** Every request that reached the API, rejected ones included, oldest first. */
  readonly received: ReceivedRequest[]
  clear (): void
  /** Closes the listener (and open connections); start() listens again on the same port. */
  stop (): Promise<void>
  start (): Promise<void>
  close (): Promise<void>
}

export const LEAKY_COOKIE = 'upstream=leak; Path=/'
/** A framing policy weaker than the gateway's, sent on every answer: the browser must still get the gateway's. */
export const LAX_FRAME_OPTIONS = 'SAMEORIGIN'

const ORDERS = [
  { id: '1', item: 'Blue widget', quantity: 2 },
  { id: '2', item: 'Red gadget', quantity: 1 },
]

/** Longest wait /slow accepts, so a typo cannot hang a test run. */
const MAX_SLOW_MS = 60_000

class KeySetUnavailable extends Error {}

async function discoverJwksUri (issuer: string): Promise<string> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) })
  if (!response.ok) throw new Error(`discovery answered ${response.status}`)
  const metadata = await response.json() as { jwks_uri?: unknown }
  if (typeof metadata.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri')
  return metadata.jwks_uri
}

function sendError (reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.code(status).send({ error, message })
}

export async function startUpstreamApi (options: UpstreamApiOptions): Promise<UpstreamApi> {
  const issuer = options.issuer
  const audience = options.audience ?? 'http://127.0.0.1:4001'
  const host = options.host ?? '127.0.0.1'
  const clockTolerance = options.clockToleranceSeconds ?? 5
  const received: ReceivedRequest[] = []
  const records = new WeakMap<FastifyRequest, ReceivedRequest>()
  const claimsOf = new WeakMap<FastifyRequest, JWTPayload>()

  let keySet: ReturnType<typeof createRemoteJWKSet> | undefined
  async function getKeySet (): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (keySet) return keySet
    try {
      keySet = createRemoteJWKSet(new URL(options.jwksUri ?? await discoverJwksUri(issuer)))
      return keySet
    } catch (error) {
      throw new KeySetUnavailable((error as Error).message, { cause: error })
    }
  }

  async function verify (token: string): Promise<JWTPayload> {
    const keys = await getKeySet()
    try {
      const { payload } = await jwtVerify(token, keys, { issuer, audience, clockTolerance, typ: 'at+jwt' })
      return payload
    } catch (error) {
      if (error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError)) {
        throw new KeySetUnavailable((error as Error).message, { cause: error })
      }
      throw error
    }
  }

  function subjectOf (request: FastifyRequest): string {
    return String(claimsOf.get(request)?.sub)
  }

  const app = Fastify({ logger: false })

  // Any body is accepted and kept as text, so the gateway's forwarding can be checked byte for byte.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })

  app.addHook('onRequest', async request => {
    const record: ReceivedRequest = { method: request.method, url: request.url, headers: { ...request.headers }, at: Date.now() }
    received.push(record)
    records.set(request, record)
  })

  app.addHook('onSend', async (_request, reply) => {
    reply.header('set-cookie', LEAKY_COOKIE)
    reply.header('x-frame-options', LAX_FRAME_OPTIONS)
  })

  app.addHook('preHandler', async (request, reply) => {
    const record = records.get(request)
    if (record && request.body !== undefined) record.body = request.body
    if (request.routeOptions.url?.startsWith('/public/')) return

    const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '')
    if (!match?.[1]) {
      reply.header('www-authenticate', 'Bearer')
      return sendError(reply, 401, 'invalid_token', 'missing bearer token')
    }
    try {
      claimsOf.set(request, await verify(match[1]))
    } catch (error) {
      if (error instanceof KeySetUnavailable) {
        return sendError(reply, 503, 'jwks_unavailable', `cannot load the identity provider's keys: ${error.message}`)
      }
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      return sendError(reply, 401, 'invalid_token', (error as Error).message)
    }
  })

  app.get('/public/ping', async () => ({ ok: true }))

  app.get('/me', async request => ({ claims: claimsOf.get(request) }))

  app.get('/orders', async request => ({ orders: ORDERS, user: subjectOf(request) }))

  app.post('/orders', async (request, reply) => {
    return reply.code(201).send({ id: randomUUID(), order: request.body ?? null, user: subjectOf(request) })
  })

  app.get<{ Params: { id: string } }>('/orders/:id', async request => ({ id: request.params.id, user: subjectOf(request) }))

  app.delete<{ Params: { id: string } }>('/admin/users/:id', async (request, reply) => {
    const roles = claimsOf.get(request)?.roles
    if (!Array.isArray(roles) || !roles.includes('admin')) {
      return sendError(reply, 403, 'forbidden', 'the admin role is required')
    }
    return { deleted: request.params.id, by: subjectOf(request) }
  })

  app.get<{ Querystring: { ms?: string } }>('/slow', async request => {
    const ms = Math.min(Math.max(Number(request.query.ms) || 0, 0), MAX_SLOW_MS)
    await sleep(ms)
    return { waited: ms, user: subjectOf(request) }
  })

  // Reflects what arrived, for header and body forwarding checks.
  app.all('/echo/*', async request => ({
    method: request.method,
    url: request.url,
    headers: request.headers,
    body: request.body ?? null,
    user: subjectOf(request),
  }))

  app.setNotFoundHandler(async (_request, reply) => sendError(reply, 404, 'not_found', 'no such route'))

  // GET /ws/echo as a WebSocket: the handshake needs the bearer token; the first message tells what the
  // handshake carried (subject, URL, any cookie), then every message comes back as sent.
  const sockets = new WebSocketServer({ noServer: true })
  function refuseUpgrade (socket: Duplex, status: number, error: string): void {
    const body = JSON.stringify({ error, message: 'WebSocket handshake refused' })
    socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    received.push({ method: request.method ?? 'GET', url: request.url ?? '', headers: { ...request.headers }, at: Date.now() })
    if (new URL(request.url ?? '/', 'http://api.invalid').pathname !== '/ws/echo') return refuseUpgrade(socket, 404, 'not_found')
    const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '')
    if (!match?.[1]) return refuseUpgrade(socket, 401, 'invalid_token')
    verify(match[1]).then(claims => {
      sockets.handleUpgrade(request, socket, head, ws => {
        ws.send(JSON.stringify({ user: String(claims.sub), url: request.url, cookie: request.headers.cookie ?? null }))
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
      })
    }, () => refuseUpgrade(socket, 401, 'invalid_token'))
  })
  // Upgraded connections are no longer the HTTP server's: end them with the listener.
  const closeSockets = () => { for (const ws of sockets.clients) ws.terminate() }

  await app.ready()
  const listener = new RestartableListener(app.server, host, options.port ?? 0)
  await listener.start()

  return {
    get url () { return `http://${urlHost(host)}:${listener.port}` },
    get port () { return listener.port },
    received,
    clear () { received.length = 0 },
    async stop () {
      closeSockets()
      await listener.stop()
    },
    start: () => listener.start(),
    async close () {
      closeSockets()
      await listener.close()
      await app.close()
    },
  }
}
