/**
 * Registers one @fastify/http-proxy per upstream in the route policy, each in
 * its own encapsulated scope, and gates every request through the policy:
 * canonical path → known prefix → session → rule → fresh token → role.
 * Only then is the request forwarded, to exactly the path that was matched.
 */
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadGateway, Forbidden, GatewayTimeout, InvalidPath, NotFound, Unauthenticated } from '../errors.js'
import type { TokenRefresher } from '../auth/token-refresher.js'
import type { GatewayMetrics } from '../metrics.js'
import { normaliseRequestPath } from './normalise-path.js'
import { isAllowedForRoles, matchRoute, type CompiledRoute, type RoutePolicy } from './route-policy.js'
import { browserResponseHeaders, upstreamRequestHeaders } from './forward-headers.js'

declare module 'fastify' {
  interface FastifyRequest {
    bffForward: { path: string, accessToken: string } | null
  }
}

export interface ProxyPluginOptions {
  policy: RoutePolicy
  refresher: TokenRefresher
  metrics: GatewayMetrics
  publicUrl: string
  /** Upstream response timeout when a route sets none. */
  defaultTimeoutMs?: number
  connectTimeoutMs?: number
}

const TIMEOUT_CODES = new Set(['FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

export default async function proxyPlugin (app: FastifyInstance, options: ProxyPluginOptions) {
  const { policy, refresher, metrics } = options
  const publicUrl = new URL(options.publicUrl)
  const publicProto = publicUrl.protocol.slice(0, -1)
  const dispatcher = new Agent({
    connect: { timeout: options.connectTimeoutMs ?? 5000, rejectUnauthorized: true },
    keepAliveTimeout: 10_000,
    connections: 256,
  })
  app.addHook('onClose', async () => { await dispatcher.close() })
  app.decorateRequest('bffForward', null)

  async function authorise (request: FastifyRequest) {
    const raw = request.raw.url ?? '/'
    const queryAt = raw.indexOf('?')
    const path = normaliseRequestPath(queryAt === -1 ? raw : raw.slice(0, queryAt))
    if (!path.ok) throw new InvalidPath()
    const match = matchRoute(policy, request.method, path)
    if (match.kind === 'unknown_prefix') throw new NotFound()
    let session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    if (match.kind === 'no_rule') throw new Forbidden()
    // Refresh before the role check: roles come from the newest tokens.
    session = await refresher.ensureFresh(session)
    request.useSession(session)
    if (!isAllowedForRoles(match.rule, session.secrets.roles)) throw new Forbidden()
    request.bffForward = { path: match.upstreamPath, accessToken: session.secrets.accessToken }
  }

  function onUpstreamError (reply: { send: (payload: Error) => unknown }, { error }: { error: Error & { code?: string } }) {
    const code = error.code ?? ''
    reply.send(TIMEOUT_CODES.has(code) ? new GatewayTimeout({ cause: error }) : new BadGateway({ cause: error }))
  }

  for (const route of policy.routes) {
    await app.register(async (scope) => registerUpstream(scope, route))
  }

  async function registerUpstream (scope: FastifyInstance, route: CompiledRoute) {
    scope.addHook('onResponse', async (request, reply) => {
      if (request.bffForward) metrics.upstreamDuration.observe({ upstream: route.prefix, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
    })
    const proxyOptions: FastifyHttpProxyOptions = {
      prefix: route.prefix,
      upstream: route.upstream,
      undici: dispatcher,
      // Never replay a request on our own: a retried POST could act twice.
      retryMethods: [],
      maxRetriesOn503: 0,
      disableRequestLogging: true,
      internalRewriteLocationHeader: false,
      config: { csrf: true },
      preHandler: authorise,
      // Forward to the canonical matched path; reply-from appends the raw query string unchanged.
      handler: (request, reply, _dest, replyOptions) => {
        const forward = request.bffForward
        if (!forward) throw new Forbidden()
        return reply.from(forward.path, replyOptions)
      },
      replyOptions: {
        timeout: route.timeoutMs ?? options.defaultTimeoutMs ?? 30_000,
        rewriteRequestHeaders: (request, headers) => upstreamRequestHeaders(headers, {
          accessToken: request.bffForward?.accessToken ?? '',
          clientIp: request.ip,
          publicProto,
          publicHost: publicUrl.host,
        }),
        rewriteHeaders: (headers) => browserResponseHeaders(headers),
        onError: onUpstreamError,
      },
    }
    await scope.register(httpProxy, proxyOptions)
  }
}
