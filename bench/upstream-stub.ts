/**
 * The upstream every contender forwards to: plain node:http, one small JSON
 * answer, no JWT validation (only "is there a bearer token at all", or a DPoP
 * token with a proof), so it is never the bottleneck. Runs in its own process.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { announceReady, closeOnStop } from './child-side.js'
import { ORDERS_BODY } from './protocol.js'

const ok = Buffer.from(ORDERS_BODY)
const unauthorized = Buffer.from(JSON.stringify({ error: 'invalid_token', message: 'missing bearer token' }))
const notFound = Buffer.from(JSON.stringify({ error: 'not_found', message: 'no such route' }))

function send (res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

/** The length of the last token seen, so the bench can give the static-token contenders one as long as the gateway's. */
let lastTokenLength = 0

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/bench/last-token-length') {
    return send(res, 200, Buffer.from(JSON.stringify({ length: lastTokenLength })))
  }
  if (req.method !== 'GET' || req.url !== '/orders') return send(res, 404, notFound)
  // Enough to prove a contender attached a token; verifying it (and a DPoP proof) is the real API's job, not the stub's.
  const authorization = req.headers.authorization
  if (authorization?.startsWith('DPoP ') && typeof req.headers.dpop === 'string') return send(res, 200, ok)
  if (!authorization?.startsWith('Bearer ')) return send(res, 401, unauthorized)
  lastTokenLength = authorization.length - 'Bearer '.length
  send(res, 200, ok)
})
// Longer than any pause between rounds, so proxies keep their pooled connections.
server.keepAliveTimeout = 120_000

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  announceReady(`http://127.0.0.1:${port}`)
})
closeOnStop(() => new Promise<void>(resolve => {
  server.close(() => resolve())
  server.closeAllConnections()
}))
