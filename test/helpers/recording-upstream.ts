/**
 * An upstream API of our own on a free loopback port: it answers every request
 * 200 `{"ok":true}` and records what it received, so a test can see exactly
 * what the gateway forwarded (or that it forwarded nothing).
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

export interface RecordingUpstream {
  /** `http://127.0.0.1:<port>`, for a route's `upstream`. */
  readonly url: string
  /** Every request received, in order; tests clear it between cases. */
  readonly requests: RecordedRequest[]
  close (): Promise<void>
}

export async function startRecordingUpstream (): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = []
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: { ...request.headers } })
    request.resume()
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end('{"ok":true}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}
