/**
 * A token-only resource server: every route but /public/* wants
 * `Authorization: Bearer <JWT access token>` from the IdP, checked against its
 * JWKS (signature, iss, aud, exp, typ at+jwt). It knows nothing of cookies and
 * sets a stray one on every response, which the gateway must not pass on.
 * `/ws/echo` is a WebSocket echo behind the same bearer check.
 *
 * Several can run side by side, each accepting only its own audience. DPoP
 * (RFC 9449): `Authorization: DPoP <token>` with a valid proof is accepted
 * everywhere, a DPoP-bound token sent as a bearer token nowhere; with
 * `dpop.required` a plain bearer token is refused, and with `dpop.nonce` every
 * proof must carry the API's current nonce (401 `use_dpop_nonce` hands it out).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'
import { WebSocketServer } from 'ws'
import { DPOP_ALGORITHMS, DpopProofError, DpopReplayCache, verifyDpopProof } from './dpop-proof.js'
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
  /** Shown as `api` in what /me and /echo report, e.g. `orders` or `billing`; default the audience. */
  name?: string
  /** DPoP tokens: `required` refuses bearer tokens; `nonce` demands the API's nonce in every proof. */
  dpop?: { required?: boolean, nonce?: boolean }
  /** Origin clients address the API by, for the proofs' `htu`; default its own URL. */
  publicUrl?: string
}

/** The access token an API accepted, decoded there (what /me and /echo report, without `claims`). */
export interface AcceptedToken {
  api: string
  /** `DPoP` only with a valid proof for this request. */
  scheme: 'Bearer' | 'DPoP'
  sub?: string
  clientId?: string
  audience?: string | string[]
  scopes: string[]
  /** The key the token is bound to (`cnf.jkt`), when DPoP-bound. */
  cnf?: { jkt: string }
  claims: JWTPayload
}

export interface ReceivedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body?: unknown
  at: number
  /** The token the API accepted for this request; absent when it refused one or none was needed. */
  token?: AcceptedToken
}

export interface UpstreamApi {
  readonly url: string
  readonly port: number
  readonly name: string
  /** The only `aud` it accepts. */
  readonly audience: string
  /** Every request that reached the API, rejected ones included, oldest first. */
  readonly received: ReceivedRequest[]
  /** The nonce every DPoP proof must carry (with `dpop.nonce`), else undefined. */
  readonly dpopNonce: string | undefined
  /** Issues a new DPoP nonce (turning nonces on); proofs with the old one get 401 `use_dpop_nonce` from now on. */
  rotateDpopNonce (): string
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

const INVOICES = [
  { id: 'INV-1', amount: 42.5, currency: 'EUR', status: 'paid' },
  { id: 'INV-2', amount: 17, currency: 'EUR', status: 'open' },
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

/** Why a request was refused: the status, the body and the challenge headers. */
interface Refusal {
  status: number
  error: string
  message: string
  headers: Record<string, string>
}

function refusal (status: number, error: string, message: string, headers: Record<string, string> = {}): Refusal {
  return { status, error, message, headers }
}

function scopesOf (claims: JWTPayload): string[] {
  return typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : []
}

function acceptedToken (api: string, scheme: AcceptedToken['scheme'], claims: JWTPayload): AcceptedToken {
  const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt
  return {
    api,
    scheme,
    ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
    ...(typeof claims.client_id === 'string' ? { clientId: claims.client_id } : {}),
    ...(claims.aud !== undefined ? { audience: claims.aud } : {}),
    scopes: scopesOf(claims),
    ...(typeof jkt === 'string' ? { cnf: { jkt } } : {}),
    claims,
  }
}

/** What /me and /echo say about the token: everything but the raw claims. */
function tokenSummary ({ claims: _claims, ...summary }: AcceptedToken): Omit<AcceptedToken, 'claims'> {
  return summary
}

export async function startUpstreamApi (options: UpstreamApiOptions): Promise<UpstreamApi> {
  const issuer = options.issuer
  const audience = options.audience ?? 'http://127.0.0.1:4001'
  const host = options.host ?? '127.0.0.1'
  const clockTolerance = options.clockToleranceSeconds ?? 5
  const name = options.name ?? audience
  const dpopRequired = options.dpop?.required ?? false
  let dpopNonce = options.dpop?.nonce ? randomBytes(16).toString('base64url') : undefined
  const dpopReplay = new DpopReplayCache()
  const received: ReceivedRequest[] = []
  const records = new WeakMap<FastifyRequest, ReceivedRequest>()
  const tokensOf = new WeakMap<FastifyRequest, AcceptedToken>()

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

  const challenge = (scheme: 'Bearer' | 'DPoP', error?: string, description?: string): string => {
    const params = [
      ...(error ? [`error="${error}"`] : []),
      ...(description ? [`error_description="${description.replaceAll('"', "'")}"`] : []),
      ...(scheme === 'DPoP' ? [`algs="${DPOP_ALGORITHMS.join(' ')}"`] : []),
    ]
    return params.length > 0 ? `${scheme} ${params.join(', ')}` : scheme
  }

  /**
   * The token of a request, checked: its JWT against the IdP, and for `DPoP` the proof for
   * this method and URL. Throws KeySetUnavailable when the IdP's keys cannot be had.
   */
  async function authenticate (headers: IncomingHttpHeaders, method: string, path: string): Promise<AcceptedToken | Refusal> {
    const offered = dpopRequired ? 'DPoP' : 'Bearer'
    const match = /^(Bearer|DPoP) ([^\s]+)$/i.exec(headers.authorization ?? '')
    const token = match?.[2]
    if (!token) {
      return refusal(401, 'invalid_token', `missing ${offered === 'DPoP' ? 'DPoP' : 'bearer'} token`, { 'www-authenticate': challenge(offered) })
    }
    const scheme = match[1]?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer'
    if (scheme === 'Bearer' && dpopRequired) {
      return refusal(401, 'invalid_token', 'this API accepts DPoP-bound tokens only', { 'www-authenticate': challenge('DPoP', 'invalid_token') })
    }
    let claims: JWTPayload
    try {
      claims = await verify(token)
    } catch (error) {
      if (error instanceof KeySetUnavailable) throw error
      return refusal(401, 'invalid_token', (error as Error).message, { 'www-authenticate': challenge(scheme, 'invalid_token') })
    }
    const bound = (claims.cnf as { jkt?: unknown } | undefined)?.jkt !== undefined
    if (scheme === 'Bearer') {
      if (bound) return refusal(401, 'invalid_token', 'a DPoP-bound token needs the DPoP scheme and a proof', { 'www-authenticate': challenge('DPoP', 'invalid_token') })
      return acceptedToken(name, scheme, claims)
    }
    if (!bound) return refusal(401, 'invalid_token', 'the token is not DPoP-bound', { 'www-authenticate': challenge('DPoP', 'invalid_token') })
    try {
      await verifyDpopProof({
        proof: headers.dpop,
        method,
        url: `${publicUrl()}${path}`,
        accessToken: token,
        tokenClaims: claims,
        ...(dpopNonce !== undefined ? { nonce: dpopNonce } : {}),
        replay: dpopReplay,
      })
    } catch (error) {
      if (!(error instanceof DpopProofError)) throw error
      return refusal(401, error.code, error.message, {
        'www-authenticate': challenge('DPoP', error.code, error.message),
        ...(error.code === 'use_dpop_nonce' && dpopNonce !== undefined ? { 'dpop-nonce': dpopNonce } : {}),
      })
    }
    return acceptedToken(name, scheme, claims)
  }

  function subjectOf (request: FastifyRequest): string {
    return String(tokensOf.get(request)?.sub)
  }

  function summaryOf (request: FastifyRequest): Omit<AcceptedToken, 'claims'> | null {
    const token = tokensOf.get(request)
    return token ? tokenSummary(token) : null
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

    let result: AcceptedToken | Refusal
    try {
      result = await authenticate(request.headers, request.method, new URL(request.url, 'http://api.invalid').pathname)
    } catch (error) {
      if (!(error instanceof KeySetUnavailable)) throw error
      return sendError(reply, 503, 'jwks_unavailable', `cannot load the identity provider's keys: ${error.message}`)
    }
    if ('status' in result) {
      reply.headers(result.headers)
      return sendError(reply, result.status, result.error, result.message)
    }
    tokensOf.set(request, result)
    if (record) record.token = result
  })

  app.get('/public/ping', async () => ({ ok: true }))

  app.get('/me', async request => ({ claims: tokensOf.get(request)?.claims, token: summaryOf(request) }))

  app.get('/orders', async request => ({ orders: ORDERS, user: subjectOf(request) }))

  app.post('/orders', async (request, reply) => {
    return reply.code(201).send({ id: randomUUID(), order: request.body ?? null, user: subjectOf(request) })
  })

  app.get<{ Params: { id: string } }>('/orders/:id', async request => ({ id: request.params.id, user: subjectOf(request) }))

  app.get('/invoices', async request => ({ invoices: INVOICES, user: subjectOf(request) }))

  app.delete<{ Params: { id: string } }>('/admin/users/:id', async (request, reply) => {
    const roles = tokensOf.get(request)?.claims.roles
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
    token: summaryOf(request),
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
    const { pathname } = new URL(request.url ?? '/', 'http://api.invalid')
    if (pathname !== '/ws/echo') return refuseUpgrade(socket, 404, 'not_found')
    authenticate(request.headers, request.method ?? 'GET', pathname).then(result => {
      if ('status' in result) return refuseUpgrade(socket, result.status, result.error)
      sockets.handleUpgrade(request, socket, head, ws => {
        ws.send(JSON.stringify({ user: String(result.sub), url: request.url, cookie: request.headers.cookie ?? null }))
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
      })
    }, () => refuseUpgrade(socket, 401, 'invalid_token'))
  })
  // Upgraded connections are no longer the HTTP server's: end them with the listener.
  const closeSockets = () => { for (const ws of sockets.clients) ws.terminate() }

  await app.ready()
  const listener = new RestartableListener(app.server, host, options.port ?? 0)
  await listener.start()
  function ownUrl (): string {
    return `http://${urlHost(host)}:${listener.port}`
  }
  function publicUrl (): string {
    return (options.publicUrl ?? ownUrl()).replace(/\/+$/, '')
  }

  return {
    get url () { return ownUrl() },
    get port () { return listener.port },
    name,
    audience,
    received,
    get dpopNonce () { return dpopNonce },
    rotateDpopNonce () {
      dpopNonce = randomBytes(16).toString('base64url')
      return dpopNonce
    },
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
