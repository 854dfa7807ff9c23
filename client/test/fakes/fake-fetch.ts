/**
 * A scripted stand-in for the gateway behind `fetch`, for unit tests of the
 * client's own logic: every request is recorded, a handler answers it.
 */
export interface RecordedRequest {
  method: string
  url: URL
  headers: Headers
  credentials: RequestCredentials | undefined
  body: string | undefined
}

export type Handler = (request: RecordedRequest) => Response | Promise<Response>

export interface FakeFetch {
  fetch: typeof fetch
  requests: RecordedRequest[]
  /** The recorded requests to `path` (pathname only). */
  to (path: string): RecordedRequest[]
}

export function fakeFetch (handler: Handler): FakeFetch {
  const requests: RecordedRequest[] = []
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    const request: RecordedRequest = {
      method: init.method ?? 'GET',
      url: new URL(String(input)),
      headers: new Headers(init.headers),
      credentials: init.credentials,
      body: typeof init.body === 'string' ? init.body : undefined,
    }
    requests.push(request)
    return handler(request)
  }
  return { fetch, requests, to: (path) => requests.filter(request => request.url.pathname === path) }
}

/** A JSON answer, as the gateway sends them. */
export function json (status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } })
}

export const problem = (status: number, error: string, extra: Record<string, unknown> = {}) =>
  json(status, { error, message: `${error} (test)`, ...extra })
