/**
 * Registers one @fastify/http-proxy per upstream in the route policy, each in
 * its own encapsulated scope, and gates every request through the policy:
 * canonical path → known prefix → upgrade → body size → session → rule →
 * fresh token → role. Only then is the request forwarded, to exactly the path
 * that was matched.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import replyFrom from '@fastify/reply-from'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadGateway, Forbidden, GatewayTimeout, NotFound, PayloadTooLarge, Unauthenticated } from '../errors.js'
import type { TokenRefresher } from '../auth/token-refresher.js'
import { canonicalPathOf } from '../canonical-path.js'
import { isAllowedForRoles, matchRoute, type CompiledRoute, type RouteMatch, type RoutePolicy } from './route-policy.js'
import type { NormalisedPath } from './normalise-path.js'
import type { ActiveSession } from '../session/sessions.js'
import { browserResponseHeaders, upstreamRequestHeaders, type ForwardContext } from './forward-headers.js'
import { declaredLengthExceeds, isBodyTooLarge, limitBody } from './body-limit.js'
import { upgradeKind } from './websocket.js'
import type { OpenSockets } from './open-sockets.js'
import { sendUpstreamAnswer, type UpstreamAnswer } from './upstream-response.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set once the policy let the request through: where it goes, with which token, through which route. */
    bffForward: { path: string, accessToken: string, upstream: string } | null
  }
}

export interface ProxyPluginOptions {
  policy: RoutePolicy
  refresher: TokenRefresher
  publicUrl: string
  /** Largest request body forwarded, in bytes (also the largest WebSocket message). */
  bodyLimit: number
  /** Upstream response timeout when a route sets none. */
  defaultTimeoutMs?: number
  connectTimeoutMs?: number
  /** Where proxied WebSockets are kept, to be closed when their session ends. */
  openSockets?: OpenSockets
}

// Node sets `upgrade` on requests that asked to switch protocols; @types/node does not declare it.
type UpgradableMessage = IncomingMessage & { upgrade?: boolean }

interface RouteCheck {
  path: NormalisedPath
  match: Exclude<RouteMatch, { kind: 'unknown_prefix' }>
  kind: ReturnType<typeof upgradeKind>
}

type ReplyOptions = NonNullable<FastifyHttpProxyOptions['replyOptions']>

type WsClientOptions = NonNullable<FastifyHttpProxyOptions['wsClientOptions']> & {
  rewriteRequestHeaders: (headers: IncomingHttpHeaders, request: FastifyRequest) => IncomingHttpHeaders
}

const TIMEOUT_CODES = new Set(['FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

export default async function proxyPlugin (app: FastifyInstance, options: ProxyPluginOptions) {
  const { policy, refresher } = options
  const publicUrl = new URL(options.publicUrl)
  const publicProto = publicUrl.protocol.slice(0, -1)
  const dispatcher = new Agent({
    connect: { timeout: options.connectTimeoutMs ?? 5000, rejectUnauthorized: true },
    keepAliveTimeout: 10_000,
    connections: 256,
  })
  app.addHook('onClose', async () => { await dispatcher.close() })
  app.decorateRequest('bffForward', null)

  function forwardContext (request: Pick<FastifyRequest, 'ip' | 'bffForward'>): ForwardContext {
    return {
      accessToken: request.bffForward?.accessToken ?? '',
      clientIp: request.ip,
      publicProto,
      publicHost: publicUrl.host,
    }
  }

  // Once reading of the body stops half-way, the connection cannot carry another request.
  function refuseBody (reply: Pick<FastifyReply, 'header'>): never {
    reply.header('connection', 'close')
    throw new PayloadTooLarge()
  }

  /** What the policy says before any session is involved: unknown prefix, too large a body. */
  function checkRoute (request: FastifyRequest, reply: FastifyReply): RouteCheck {
    // The canonical-path plugin has checked the path already; this is the same, memoised result.
    const path = request.bffPath ?? canonicalPathOf(request.raw.url ?? '')
    const match = matchRoute(policy, request.method, path)
    if (match.kind === 'unknown_prefix') throw new NotFound()
    const kind = upgradeKind({ method: request.method, headers: request.headers, upgrade: (request.raw as UpgradableMessage).upgrade === true }, match.route.websocket)
    if (declaredLengthExceeds(request.headers['content-length'], options.bodyLimit)) refuseBody(reply)
    return { path, match, kind }
  }

  /** A signed-in user with fresh tokens: may their roles use the rule? Then set the request up to go. */
  function admit (request: FastifyRequest, { path, match, kind }: RouteCheck, session: ActiveSession): void {
    if (match.kind === 'no_rule' || !isAllowedForRoles(match.rule, session.secrets.roles)) throw new Forbidden()
    request.bffForward = { path: match.upstreamPath, accessToken: session.secrets.accessToken, upstream: match.route.prefix }
    if (request.body instanceof Readable) request.body = limitBody(request.body, options.bodyLimit)
    if (kind === 'websocket') {
      // @fastify/http-proxy derives a handshake's upstream path from the request URL: make it the canonical one.
      const raw = request.raw.url ?? ''
      const queryAt = raw.indexOf('?')
      const remainder = path.path.slice(match.route.prefix.length) || '/'
      request.raw.url = match.route.prefix + remainder + (queryAt === -1 ? '' : raw.slice(queryAt))
    }
  }

  async function authoriseLoading (request: FastifyRequest, route: RouteCheck): Promise<void> {
    let session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    if (route.match.kind === 'no_rule') throw new Forbidden()
    // Refresh before the role check: roles come from the newest tokens.
    session = await refresher.ensureFresh(session)
    request.useSession(session)
    admit(request, route, session)
  }

  // Callback-style: most API calls have a cached session with a fresh token and are decided
  // without a single promise; anything else (a store read, a refresh) takes the async path.
  function authorise (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    let route: RouteCheck
    try {
      route = checkRoute(request, reply)
      const session = request.cachedSession()
      if (session && !refresher.needsRefresh(session)) {
        admit(request, route, session)
        done()
        return
      }
    } catch (error) {
      done(error as Error)
      return
    }
    authoriseLoading(request, route).then(() => done(), done)
  }

  function onUpstreamError (reply: { header: (name: string, value: string) => unknown, send: (payload: Error) => unknown }, { error }: { error: Error & { code?: string } }) {
    if (isBodyTooLarge(error)) {
      reply.header('connection', 'close')
      reply.send(new PayloadTooLarge({ cause: error }))
      return
    }
    const code = error.code ?? ''
    reply.send(TIMEOUT_CODES.has(code) ? new GatewayTimeout({ cause: error }) : new BadGateway({ cause: error }))
  }

  // The library's typings omit the header hook; its default would forward the browser's Cookie.
  // It runs once per proxied WebSocket, right after the handshake was let through.
  const wsClientOptions: WsClientOptions = {
    rewriteRequestHeaders: (_headers, request) => {
      if (request.bffSessionValue) options.openSockets?.track(request.raw.socket, request.bffSessionValue)
      return upstreamRequestHeaders({}, forwardContext(request))
    },
  }

  for (const route of policy.routes) {
    await app.register(async (scope) => registerUpstream(scope, route))
  }

  async function registerUpstream (scope: FastifyInstance, route: CompiledRoute) {
    // API answers are data: they get the API set of security headers, not the page set.
    scope.addHook('onRoute', (routeOptions) => {
      routeOptions.config = { ...routeOptions.config, securityHeaders: 'api' }
    })
    // Fastify's own text/plain parser would buffer such bodies under its global bodyLimit; here every
    // body goes through the library's pass-through parser and so through our streaming limit.
    scope.removeAllContentTypeParsers()
    const replyOptions: ReplyOptions = {
      timeout: route.timeoutMs ?? options.defaultTimeoutMs ?? 30_000,
      rewriteRequestHeaders: (request, headers) => upstreamRequestHeaders(headers, forwardContext(request)),
      rewriteHeaders: (headers) => browserResponseHeaders(headers),
      onError: onUpstreamError,
      onResponse: (request, reply, res) => {
        // Typed by the library as a ServerResponse; what it passes is `{ statusCode, headers, stream }`.
        const answer = res as unknown as UpstreamAnswer
        sendUpstreamAnswer(request.method, reply, answer, (error) => {
          // The upstream's headers are on the reply already; an error answer must carry none of them.
          for (const name of Object.keys(browserResponseHeaders(answer.headers))) reply.removeHeader(name)
          onUpstreamError(reply, { error })
        })
      },
    }
    // Never replay a request on our own: a retried POST could act twice.
    const clientOptions = { undici: dispatcher, retryMethods: [], maxRetriesOn503: 0, disableRequestLogging: true }
    // Forward to the canonical matched path; reply-from appends the raw query string unchanged.
    const forward = (request: FastifyRequest, reply: FastifyReply) => {
      if (!request.bffForward) throw new Forbidden()
      return reply.from(request.bffForward.path, replyOptions)
    }

    if (route.websocket) {
      await scope.register(httpProxy, {
        ...clientOptions,
        prefix: route.prefix,
        upstream: route.upstream,
        internalRewriteLocationHeader: false,
        config: { csrf: true },
        preHandler: authorise,
        handler: forward,
        replyOptions,
        websocket: true,
        wsServerOptions: { maxPayload: options.bodyLimit },
        wsClientOptions,
      })
      return
    }
    // Without WebSockets, straight to @fastify/reply-from, which @fastify/http-proxy is built on: the
    // policy has already decided the exact upstream path, and the proxy's own per-request path
    // rewriting and URL checks (three URL parses per request) would only repeat that work.
    await scope.register(replyFrom, { ...clientOptions, base: route.upstream })
    scope.addContentTypeParser('*', passBodyThrough)
    await scope.register(async (routes) => {
      for (const url of ['/', '/*']) {
        routes.route({
          url,
          method: PROXIED_METHODS,
          config: { csrf: true },
          preHandler: authorise,
          handler: forward,
        })
      }
    }, { prefix: route.prefix })
  }
}

// What @fastify/http-proxy answers on: every method a browser's fetch() sends but CONNECT and TRACE.
const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Bodies stay streams: limited by `limitBody` and piped to the upstream, never buffered here. */
function passBodyThrough (_request: FastifyRequest, payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void): void {
  done(null, payload)
}
