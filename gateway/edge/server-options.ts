/**
 * How the two Fastify servers are built: logging, proxies trusted, limits, and
 * who answers what the HTTP parser and the router refuse.
 */
import type { FastifyHttpOptions, FastifyServerOptions } from 'fastify'
import type { Server } from 'node:http'
import type { GatewayConfig } from '../config.js'
import { AccessLogController, lazyChildLoggerFactory, loggerOptions, type LogStream } from '../observability/logging.js'
import { MAX_PATH_LENGTH } from '../proxy/normalise-path.js'
import { httpServerOptions, onClientError, onRouterError } from './protocol-errors.js'

/** Fastify's `trustProxy` from ours: a hop count means "trust that many proxies nearest to us" (as proxy-addr reads numbers). */
function trustProxy (setting: GatewayConfig['trustProxy']): FastifyServerOptions['trustProxy'] {
  return typeof setting === 'number'
    ? ((hops: number) => (_address: string, index: number) => index < hops)(setting)
    : setting
}

/**
 * Both listeners: one access line per request, no client-chosen request ids, idle connections
 * closed on close, and Host checked by us (`refuseAmbiguousHost`), not by Node.
 */
function common (config: GatewayConfig, name: string, logStream: LogStream | undefined): FastifyHttpOptions<Server> {
  return {
    http: httpServerOptions,
    logger: loggerOptions(config.logLevel, name, logStream),
    childLoggerFactory: lazyChildLoggerFactory,
    // One access line per request instead of Fastify's two (logging.ts).
    logController: new AccessLogController(),
    // A client-supplied request id would let a caller forge log correlation.
    requestIdHeader: false,
    forceCloseConnections: 'idle',
  }
}

/** `logStream`: where log lines go instead of stdout (tests read audit lines there). */
export function publicServerOptions (config: GatewayConfig, logStream?: LogStream): FastifyHttpOptions<Server> {
  return {
    ...common(config, 'bff-gateway', logStream),
    trustProxy: trustProxy(config.trustProxy),
    // While closing, a request that reached us on an open connection is served (with `Connection: close`),
    // not refused: Fastify's 503 would fail it, out of contract JSON, though no other instance saw it.
    return503OnClosing: false,
    bodyLimit: 1024 * 1024,
    // The canonical-path check owns the length limit (414); the router's must not be tighter.
    routerOptions: { maxParamLength: MAX_PATH_LENGTH },
    // What the HTTP parser and the router refuse still gets the contract's JSON errors.
    clientErrorHandler: onClientError,
    frameworkErrors: onRouterError,
  }
}

export function adminServerOptions (config: GatewayConfig, logStream?: LogStream): FastifyHttpOptions<Server> {
  // Operator calls log audit events through the public listener's logger: their ids must not pass for a browser request's.
  let requests = 0
  return { ...common(config, 'bff-admin', logStream), genReqId: () => `admin-${(requests = (requests + 1) & 0x7fffffff).toString(36)}` }
}
