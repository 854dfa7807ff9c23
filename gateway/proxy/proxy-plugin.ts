/**
 * Registers the routes of each upstream in the route policy, each in its own
 * encapsulated scope, behind the gate (gate.ts: session, CSRF, rule, token,
 * roles, step-up, credential). Only then is the request forwarded (upstream-exchange.ts,
 * or dpop-exchange.ts for a DPoP-bound token, with a proof per request), to
 * exactly the path that was matched, with the method it arrived with: nothing
 * that would make the upstream use another (override headers, `_method` in a
 * form or multipart body) goes with it. WebSocket handshakes, on routes that
 * allow them, are proxied by @fastify/http-proxy. The prefixes are those of
 * the start-up policy; what they allow, and where it goes, is the policy in
 * force when a request arrives (route-policy-reload.ts).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { buffer as readWhole } from 'node:stream/consumers'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadGateway, causeOfType, Forbidden, GatewayTimeout, InvalidRequest, PayloadTooLarge, StepUpRequired } from '../errors.js'
import { stepUpLoginUrl, stepUpReturnTo } from '../auth/step-up.js'
import { insufficientUserAuthentication } from './step-up-challenge.js'
import type { CompiledRoute } from './route-policy.js'
import { createGate, type Forward } from './gate.js'
import { browserResponseHeaders, combinedVary, upstreamRequestHeaders, type ForwardContext } from './forward-headers.js'
import { isBodyTooLarge, pipeChecked } from './body-limit.js'
import { bodyKind, hasMethodParam, METHOD_PARAM_REFUSED, multipartBoundary, partNamesMethodParam } from './method-override.js'
import { multipartGuard } from './multipart-guard.js'
import { createOpenSockets } from './open-sockets.js'
import { exchangeWithUpstream, type AnswerSink, type UpstreamRequest } from './upstream-exchange.js'
import { createDpopNonces, exchangeWithProof } from './dpop-exchange.js'

export interface ProxyPluginOptions {
  publicUrl: string
  /** Largest request body forwarded, in bytes (also the largest WebSocket message). */
  bodyLimit: number
  /** Upstream response timeout when a route sets none. */
  defaultTimeoutMs?: number
  connectTimeoutMs?: number
}

/** How often open WebSockets' sessions are re-read even without an invalidation message. */
const WEBSOCKET_SWEEP_MS = 10_000

type WsClientOptions = NonNullable<FastifyHttpProxyOptions['wsClientOptions']> & {
  rewriteRequestHeaders: (headers: IncomingHttpHeaders, request: FastifyRequest) => IncomingHttpHeaders
}

// undici's: no answer head, or silence within the body, past the route's timeout.
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

export default async function proxyPlugin (app: FastifyInstance, options: ProxyPluginOptions) {
  const { sessions, sessionChanges, metrics, routePolicy } = app
  // Proxied WebSockets, kept to be closed when their session ends.
  const openSockets = createOpenSockets({
    reload: (session) => sessions.reload(session),
    sweepMs: WEBSOCKET_SWEEP_MS,
    onEnded: (session) => app.log.info({ session: session.handle, sub: session.meta.sub }, 'WebSocket closed: its session is over'),
    onCheckFailed: (error) => app.log.warn({ err: error }, 'could not re-check the session of an open WebSocket; it stays open until the next check'),
  })
  sessionChanges.listen((invalidation) => openSockets.announce(invalidation))
  app.addHook('preClose', async () => { openSockets.close() })
  const publicUrl = new URL(options.publicUrl)
  const publicProto = publicUrl.protocol.slice(0, -1)
  const agent = new Agent({
    connect: { timeout: options.connectTimeoutMs ?? 5000, rejectUnauthorized: true },
    keepAliveTimeout: 10_000,
    connections: 256,
  })
  // Tracing (when on): a client span per upstream request, whose `traceparent` the upstream gets.
  const dispatcher = app.tracing?.traceUpstream(agent) ?? agent
  app.addHook('onClose', async () => { await dispatcher.close() })
  app.decorateRequest('bffForward', null)

  function forwardContext (request: Pick<FastifyRequest, 'ip' | 'bffForward'>): ForwardContext {
    const forward = request.bffForward
    return {
      accessToken: forward?.accessToken,
      tokenScheme: forward?.dpopKey === undefined ? 'Bearer' : 'DPoP',
      clientIp: request.ip,
      publicProto,
      publicHost: publicUrl.host,
    }
  }

  // Per route object (each policy, a reloaded one too, has its own), the cell counting its requests sent
  // with a kept token: a hit, on nearly every forwarded request, is one increment, read at scrape time.
  const cacheHits = new WeakMap<CompiledRoute, { n: number }>()
  const cacheHitCell = (route: CompiledRoute) => {
    let cell = cacheHits.get(route)
    if (cell === undefined) {
      cell = metrics.upstreamTokenCacheHitCell({
        audience: route.token.audience ?? (route.token.type === 'client' ? 'default' : 'session'),
        type: route.token.type === 'client' ? 'client' : 'user',
      })
      cacheHits.set(route, cell)
    }
    return cell
  }
  const gate = createGate({
    policy: routePolicy,
    userTokens: app.userTokens,
    clientTokens: app.clientTokens,
    tokenCacheHit: (route) => { cacheHitCell(route).n += 1 },
    checkCsrf: app.checkCsrf,
    bodyLimit: options.bodyLimit,
    publicOrigin: publicUrl.origin,
    onStepUp: () => metrics.stepUpChallenges.inc({ source: 'policy' }),
  })
  const dpopNonces = createDpopNonces()

  /**
   * Sends an admitted request upstream. With a DPoP-bound token the body is read whole first
   * (within the body limit, which the gate's counting stream enforces): a nonce challenge is
   * answered by sending it again.
   */
  function deliver (request: FastifyRequest, reply: FastifyReply, target: Forward, upstreamRequest: UpstreamRequest): void {
    const { dpopKey, accessToken } = target
    if (dpopKey === undefined || accessToken === undefined) {
      exchangeWithUpstream(dispatcher, upstreamRequest, reply, browserAnswer(request, reply, target))
      return
    }
    const sendWithProof = () => exchangeWithProof(dispatcher, upstreamRequest, { key: dpopKey, accessToken, nonces: dpopNonces }, reply, browserAnswer(request, reply, target))
    const { body } = upstreamRequest
    if (!(body instanceof Readable)) {
      sendWithProof()
      return
    }
    readWhole(body).then((bytes) => {
      upstreamRequest.body = bytes
      upstreamRequest.headers['content-length'] = String(bytes.length)
      delete upstreamRequest.headers['transfer-encoding']
      sendWithProof()
    }, (error: Error) => {
      reply.header('connection', 'close')
      reply.send(isBodyTooLarge(error) ? new PayloadTooLarge({ cause: error }) : causeOfType(error, InvalidRequest) ?? new InvalidRequest('The request body could not be read', { cause: error }))
    })
  }

  function onUpstreamError (reply: FastifyReply, error: Error & { code?: string }) {
    if (isBodyTooLarge(error)) {
      reply.header('connection', 'close')
      reply.send(new PayloadTooLarge({ cause: error }))
      return
    }
    // The body was refused as it streamed (multipart-guard.ts): the upstream never got it whole.
    const refused = causeOfType(error, InvalidRequest)
    if (refused) {
      reply.header('connection', 'close')
      reply.send(refused)
      return
    }
    const code = error.code ?? ''
    reply.send(TIMEOUT_CODES.has(code) ? new GatewayTimeout({ cause: error }) : new BadGateway({ cause: error }))
  }

  /** What the browser gets of the upstream's answer, or of its failure; the upstream's time goes on `target`. */
  function browserAnswer (request: FastifyRequest, reply: FastifyReply, target: Forward): AnswerSink {
    const sentAt = performance.now()
    return {
      answer (statusCode, upstreamHeaders, body) {
        target.upstreamSeconds = (performance.now() - sentAt) / 1000
        // RFC 9470: the upstream wants a stronger or more recent sign-in; the browser is told how to get one.
        const stepUp = statusCode === 401 ? insufficientUserAuthentication(upstreamHeaders['www-authenticate']) : undefined
        if (stepUp) {
          if (body instanceof Readable) body.destroy()
          metrics.stepUpChallenges.inc({ source: 'upstream' })
          if (!request.raw.complete) reply.header('connection', 'close')
          reply.send(new StepUpRequired(stepUpLoginUrl(stepUp, stepUpReturnTo(request.headers.referer, publicUrl.origin))))
          return
        }
        try {
          reply.code(statusCode)
        } catch (error) {
          onUpstreamError(reply, new Error(`the upstream answered with status ${statusCode}`, { cause: error }))
          return
        }
        const headers = browserResponseHeaders(upstreamHeaders, target.admittedWithSession)
        if (headers.vary !== undefined) {
          const ownVary = reply.getHeader('vary')
          if (ownVary !== undefined) headers.vary = combinedVary(ownVary, headers.vary)
        }
        reply.headers(headers)
        // An HTTP/1 connection whose request body was not read to its end cannot carry another request.
        if (!request.raw.complete) reply.header('connection', 'close')
        reply.send(body)
      },
      fail (error) {
        target.upstreamSeconds = (performance.now() - sentAt) / 1000
        onUpstreamError(reply, error)
      },
    }
  }

  /**
   * Rails, Laravel and Symfony also read `_method` from a form or multipart body. A form is read
   * whole (within the body limit) and checked before any of it goes; multipart is checked part by
   * part as it streams (multipart-guard.ts). Every other body streams through untouched.
   */
  function sendWithoutMethodParam (request: FastifyRequest, reply: FastifyReply, target: Forward, upstreamRequest: UpstreamRequest, body: Readable): void {
    const send = (checked: Readable | Buffer) => {
      upstreamRequest.body = checked
      deliver(request, reply, target, upstreamRequest)
    }
    const contentType = request.headers['content-type']
    const kind = bodyKind(contentType)
    if (kind === 'form') {
      readWhole(body).then((bytes) => {
        if (hasMethodParam(bytes.toString('latin1'))) reply.send(new InvalidRequest(METHOD_PARAM_REFUSED))
        else send(bytes)
      }, (error: Error) => {
        reply.header('connection', 'close')
        reply.send(isBodyTooLarge(error) ? new PayloadTooLarge({ cause: error }) : new InvalidRequest('The request body could not be read', { cause: error }))
      })
      return
    }
    if (kind === 'multipart') {
      const boundary = multipartBoundary(contentType ?? '')
      if (boundary === undefined) {
        reply.header('connection', 'close')
        reply.send(new InvalidRequest('The multipart body has no boundary, or one that could be read more than one way'))
        return
      }
      send(pipeChecked(body, multipartGuard(boundary, (partHeaders) =>
        partNamesMethodParam(partHeaders) ? new InvalidRequest(METHOD_PARAM_REFUSED) : undefined)))
      return
    }
    send(body)
  }

  // The library's typings omit the header hook; its default would forward the browser's Cookie.
  // It runs once per proxied WebSocket, right after the handshake was let through.
  const wsClientOptions: WsClientOptions = {
    rewriteRequestHeaders: (_headers, request) => {
      if (request.bffSessionValue) openSockets.track(request.raw.socket, request.bffSessionValue)
      return upstreamRequestHeaders({}, forwardContext(request))
    },
  }

  // The start-up policy's prefixes; a reload may change what they allow, not which there are.
  for (const route of routePolicy.current.routes) {
    await app.register(async (scope) => registerUpstream(scope, route))
  }

  async function registerUpstream (scope: FastifyInstance, route: CompiledRoute) {
    // API answers are data: they get the API set of security headers, not the page set.
    scope.addHook('onRoute', (routeOptions) => {
      routeOptions.config = { ...routeOptions.config, securityHeaders: 'api' }
    })
    scope.addHook('onResponse', (request, reply, done) => {
      const forwarded = request.bffForward
      if (forwarded && forwarded.upstreamSeconds >= 0) {
        metrics.upstreamDuration.observe({ upstream: forwarded.route.prefix, status: String(reply.statusCode) }, forwarded.upstreamSeconds)
      }
      done()
    })
    // Fastify's own text/plain parser would buffer such bodies under its global bodyLimit; here every
    // body goes through a pass-through parser (ours, or @fastify/http-proxy's) and so through our streaming limit.
    scope.removeAllContentTypeParsers()
    // Forward to the canonical matched path, with the browser's query string unchanged, by the
    // route the gate matched: the one of the policy the request started under, whatever a reload did since.
    const forward = (request: FastifyRequest, reply: FastifyReply) => {
      const target = request.bffForward
      if (!target) throw new Forbidden()
      const admittedBy = target.route
      const url = request.raw.url ?? ''
      const queryAt = url.indexOf('?')
      // Fastify never parses a GET's or HEAD's body; a body the browser sent with one is not forwarded.
      const body = request.body instanceof Readable && request.method !== 'GET' && request.method !== 'HEAD' ? request.body : null
      const headers = upstreamRequestHeaders(request.headers, forwardContext(request))
      // Without a body, undici sets the length itself.
      if (body === null) delete headers['content-length']
      const upstreamRequest: UpstreamRequest = {
        origin: admittedBy.upstream,
        path: queryAt === -1 ? target.path : target.path + url.slice(queryAt),
        method: request.method,
        headers,
        body,
        timeoutMs: admittedBy.timeoutMs ?? options.defaultTimeoutMs ?? 30_000,
      }
      if (body === null || admittedBy.allowMethodParam) deliver(request, reply, target, upstreamRequest)
      else sendWithoutMethodParam(request, reply, target, upstreamRequest, body)
      return reply
    }

    if (route.websocket) {
      // The library proxies the WebSocket handshakes; every plain request still goes through `forward`.
      // Its own HTTP client (unused) shares our dispatcher and may never replay a request.
      await scope.register(httpProxy, {
        undici: dispatcher,
        retryMethods: [],
        maxRetriesOn503: 0,
        disableRequestLogging: true,
        prefix: route.prefix,
        upstream: route.upstream,
        internalRewriteLocationHeader: false,
        preHandler: gate,
        handler: forward,
        websocket: true,
        wsServerOptions: { maxPayload: options.bodyLimit },
        wsClientOptions,
      })
      return
    }
    // Without WebSockets there is nothing for the library to do: the policy has already decided the
    // exact upstream path, and `forward` sends the request there.
    scope.addContentTypeParser('*', passBodyThrough)
    await scope.register(async (routes) => {
      for (const url of ['/', '/*']) {
        routes.route({
          url,
          method: PROXIED_METHODS,
          preHandler: gate,
          handler: forward,
        })
      }
    }, { prefix: route.prefix })
  }
}

// What @fastify/http-proxy answers on: every method a browser's fetch() sends but CONNECT and TRACE.
const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Bodies stay streams, limited by `limitBody`; only a form is read whole, after admission, to look for `_method`. */
function passBodyThrough (_request: FastifyRequest, payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void): void {
  done(null, payload)
}
