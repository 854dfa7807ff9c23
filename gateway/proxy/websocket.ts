/**
 * What may be upgraded. Only a WebSocket handshake (`GET`, `Connection:
 * upgrade`, `Upgrade: websocket`) on a route whose policy says
 * `"websocket": true` is proxied as one; any other `Upgrade` (h2c, a TLS
 * upgrade, a WebSocket header on a plain request) is refused rather than
 * stripped, so no client can make the gateway and the upstream disagree about
 * what the connection carries. The Origin of a handshake is checked by the
 * CSRF layer, the session and the policy's GET rule by the proxy as for any
 * request.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Forbidden, InvalidRequest } from '../errors.js'

export interface UpgradeRequest {
  method: string
  headers: IncomingHttpHeaders
  /** Node's verdict: the request asked to switch protocols (`Connection: upgrade` with an `Upgrade` header). */
  upgrade: boolean
}

/**
 * `'http'` for a plain request, `'websocket'` for a handshake to proxy as a WebSocket.
 * @throws InvalidRequest for any other use of `Upgrade`
 * @throws Forbidden for a WebSocket handshake on a route without `websocket: true`
 */
export function upgradeKind (request: UpgradeRequest, routeAllowsWebSocket: boolean): 'http' | 'websocket' {
  const upgrade = request.headers.upgrade
  if (upgrade === undefined && !request.upgrade) return 'http'
  if (request.method !== 'GET' || upgrade?.toLowerCase() !== 'websocket') throw new InvalidRequest('Only a WebSocket handshake (GET with Upgrade: websocket) may ask to switch protocols')
  if (!routeAllowsWebSocket) throw new Forbidden()
  // `Upgrade: websocket` without `Connection: upgrade` is no handshake.
  if (!request.upgrade) throw new InvalidRequest('The WebSocket handshake is incomplete')
  return 'websocket'
}
