/**
 * JSON over the client's own `fetch`: bodies serialised, answers parsed, and
 * every non-2xx answer thrown as a `BffError` carrying the gateway's code.
 */
import { BffError, errorFrom } from './bff-error.js'

export interface JsonInit extends Omit<RequestInit, 'body'> {
  /** Sent as JSON (`content-type: application/json`) when present. */
  body?: unknown
}

type Send = (path: string, init?: RequestInit) => Promise<Response>

export interface JsonCalls {
  /** The answer's JSON (`undefined` for an empty answer); throws `BffError` on a non-2xx status. */
  json<T = unknown> (path: string, init?: JsonInit): Promise<T>
  get<T = unknown> (path: string, init?: Omit<JsonInit, 'method' | 'body'>): Promise<T>
  post<T = unknown> (path: string, body?: unknown, init?: Omit<JsonInit, 'method' | 'body'>): Promise<T>
  put<T = unknown> (path: string, body?: unknown, init?: Omit<JsonInit, 'method' | 'body'>): Promise<T>
  patch<T = unknown> (path: string, body?: unknown, init?: Omit<JsonInit, 'method' | 'body'>): Promise<T>
  delete<T = unknown> (path: string, init?: Omit<JsonInit, 'method' | 'body'>): Promise<T>
}

export function jsonCalls (send: Send): JsonCalls {
  async function json<T> (path: string, init: JsonInit = {}): Promise<T> {
    const { body, ...rest } = init
    const headers = new Headers(rest.headers)
    if (!headers.has('accept')) headers.set('accept', 'application/json')
    const request: RequestInit = { ...rest, headers }
    if (body !== undefined) {
      headers.set('content-type', 'application/json')
      request.body = JSON.stringify(body)
    }
    const response = await send(path, request)
    if (!response.ok) throw await errorFrom(response)
    const text = await response.text()
    if (text === '') return undefined as T
    try {
      return JSON.parse(text) as T
    } catch {
      throw new BffError('invalid_response', `${path} answered ${response.status} with a body that is not JSON`, response.status)
    }
  }
  const withBody = (method: string) => <T>(path: string, body?: unknown, init: JsonInit = {}) =>
    json<T>(path, { ...init, method, body })
  return {
    json,
    get: (path, init = {}) => json(path, { ...init, method: 'GET' }),
    post: withBody('POST'),
    put: withBody('PUT'),
    patch: withBody('PATCH'),
    delete: (path, init = {}) => json(path, { ...init, method: 'DELETE' }),
  }
}
