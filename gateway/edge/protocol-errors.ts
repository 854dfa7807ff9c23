/**
 * Answers for requests that never reach a hook: what Node's HTTP parser refuses
 * (`clientError`: malformed request lines and headers, smuggling attempts,
 * oversized headers, slow clients) and what Fastify's router refuses (bad
 * percent-encoding, over-long parameters). Both answer with the contract's JSON
 * body; the parser's answers also close the connection, since nothing after a
 * framing error can be trusted. Plus the one protocol rule Node leaves to us:
 * exactly one Host header, checked by a hook ahead of the gateway's own.
 */
import { STATUS_CODES, type IncomingMessage, type ServerOptions } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HeadersTooLarge, Internal, InvalidPath, InvalidRequest, publicCode, RequestTimeout, UriTooLong } from '../errors.js'

type GatewayError = Error & { code: string, statusCode?: number }

function bodyOf (error: GatewayError): string {
  return JSON.stringify({ error: publicCode(error.code), message: error.message })
}

function parserRefusal (code: string | undefined): GatewayError {
  if (code === 'HPE_HEADER_OVERFLOW') return new HeadersTooLarge()
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return new RequestTimeout()
  return new InvalidRequest('The request is malformed')
}

/** The raw HTTP/1.1 response for a request Node's parser refused (error code as in `clientError`). */
export function clientErrorResponse (code: string | undefined): string {
  const error = parserRefusal(code)
  const status = error.statusCode ?? 400
  const body = bodyOf(error)
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n')
}

/** Fastify's `clientErrorHandler`: answers once and closes. */
export function onClientError (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  this.log.info({ code: error.code }, 'request refused by the HTTP parser')
  if (socket.writable) socket.end(clientErrorResponse(error.code))
  socket.destroy()
}

/** Fastify's `frameworkErrors`: what the router refuses before any route or hook. */
export function onRouterError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  let refusal: GatewayError
  if (error.code === 'FST_ERR_BAD_URL') refusal = new InvalidPath()
  else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') refusal = new UriTooLong()
  else refusal = new Internal({ cause: error })
  const status = refusal.statusCode ?? 500
  if (status >= 500) request.log.error({ err: refusal }, 'router error')
  reply.code(status).header('cache-control', 'no-store').type('application/json; charset=utf-8').send(bodyOf(refusal))
}

/**
 * Node's server options for both listeners. Node answers an HTTP/1.1 request without Host
 * itself, with an empty 400 the contract's clients cannot read; `refuseAmbiguousHost` does it instead.
 */
export const httpServerOptions: ServerOptions = { requireHostHeader: false }

type HostHeaders = Pick<IncomingMessage, 'headers' | 'rawHeaders' | 'httpVersionMajor' | 'httpVersionMinor'>

/**
 * What is wrong with a request's Host headers, if anything (RFC 9112 §3.2): an HTTP/1.1 request
 * must carry one, and no request may carry two (which a proxy in front and we could each read
 * differently).
 */
export function hostHeaderProblem (request: HostHeaders): string | undefined {
  if (request.headers.host === undefined) {
    return request.httpVersionMajor === 1 && request.httpVersionMinor === 0 ? undefined : 'The request has no Host header'
  }
  // Node keeps the first of several Host headers in `headers`: only the raw list shows the others.
  const raw = request.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return 'The request has more than one Host header'
  }
  return undefined
}

/** An `onRequest` hook, ahead of every routing or session decision: 400 `invalid_request`, and the connection closed, for a bad Host. */
export function refuseAmbiguousHost (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const problem = hostHeaderProblem(request.raw)
  if (problem === undefined) {
    done()
    return
  }
  reply.header('connection', 'close')
  done(new InvalidRequest(problem))
}
