/**
 * Answers for requests that never reach a hook: what Node's HTTP parser refuses
 * (`clientError`: malformed request lines and headers, smuggling attempts,
 * oversized headers, slow clients) and what Fastify's router refuses (bad
 * percent-encoding, over-long parameters). Both answer with the contract's JSON
 * body; the parser's answers also close the connection, since nothing after a
 * framing error can be trusted.
 */
import { STATUS_CODES } from 'node:http'
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
