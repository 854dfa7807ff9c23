/**
 * One path, decoded once: every request target is normalised before matching,
 * anything two servers could read differently is refused with a JSON error and
 * never forwarded, and an accepted path reaches the upstream byte for byte as
 * it was matched, its query string untouched. Requests go over a bare socket,
 * because fetch() would tidy up the very paths under test.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'

let stack: Stack
let alice: SignedInUser

beforeAll(async () => {
  stack = await startStack()
  alice = await signIn(stack.publicUrl)
})
afterAll(async () => { await stack?.close() })
beforeEach(() => { stack.api.clear() })

async function get (target: string, cookie = alice.cookie) {
  const host = new URL(stack.publicUrl).host
  const exchange = await rawExchange(stack.publicUrl, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`)
  return { status: exchange.statuses[0], body: firstBody(exchange) as { error?: string }, exchange }
}

describe('canonical paths reach the upstream exactly as matched', () => {
  it.each([
    ['/api/orders', '/orders'],
    ['/api/orders?status=open&x=%20y', '/orders?status=open&x=%20y'],
    ['/api/orders?q=../../admin&r=%2F%2e%2e%5C', '/orders?q=../../admin&r=%2F%2e%2e%5C'],
    ['/api/orders?a=1&a=2&b', '/orders?a=1&a=2&b'],
    ['/api/orders/7', '/orders/7'],
    ['/api/orders/%37', '/orders/7'],
    ['/api/orders/%61bc', '/orders/abc'],
    ['/api/orders/caf%C3%A9', '/orders/caf%C3%A9'],
    ['/api/orders/caf%c3%a9', '/orders/caf%C3%A9'],
    ['/api/orders/a:b', '/orders/a%3Ab'],
    ['/api/orders/a@b', '/orders/a%40b'],
    ['/api/orders/a%20b', '/orders/a%20b'],
  ])('%s → upstream %s', async (target, upstream) => {
    const response = await get(target)
    expect(response.status).toBe(200)
    expect(stack.api.received.map(r => r.url)).toEqual([upstream])
  })
})

type Row = [target: string, status: number, code: string]

const refused: Row[] = [
  // dot-segments, raw and encoded
  ['/api/orders/../admin/users/1', 400, 'invalid_path'],
  ['/api/orders/..', 400, 'invalid_path'],
  ['/api/orders/.', 400, 'invalid_path'],
  ['/api/./orders', 400, 'invalid_path'],
  ['/api/orders/%2e%2e', 400, 'invalid_path'],
  ['/api/orders/%2E', 400, 'invalid_path'],
  ['/api/orders/.%2e', 400, 'invalid_path'],
  ['/api/orders/%2e%2e/%2e%2e/admin', 400, 'invalid_path'],
  ['/api/%2e%2e/bff/user', 400, 'invalid_path'],
  // empty segments
  ['//api/orders', 400, 'invalid_path'],
  ['/api//orders', 400, 'invalid_path'],
  ['/api/orders//7', 400, 'invalid_path'],
  // encoded separators
  ['/api/orders%2f7', 400, 'invalid_path'],
  ['/api/orders/7%2F..%2Fadmin', 400, 'invalid_path'],
  ['/api/orders/%5c7', 400, 'invalid_path'],
  ['/api/orders/..%5c..%5cadmin', 400, 'invalid_path'],
  // backslash, path parameters, fragments
  ['/api/orders\\7', 400, 'invalid_path'],
  ['/api\\orders', 400, 'invalid_path'],
  ['/api/orders;jsessionid=1', 400, 'invalid_path'],
  ['/api/orders/7;x=1', 400, 'invalid_path'],
  ['/api/orders/%3b', 400, 'invalid_path'],
  ['/api/orders/7#frag', 400, 'invalid_path'],
  // double and malformed encoding
  ['/api/orders/%252e%252e', 400, 'invalid_path'],
  ['/api/orders/%25', 400, 'invalid_path'],
  ['/api/orders/%zz', 400, 'invalid_path'],
  ['/api/orders/%', 400, 'invalid_path'],
  ['/api/orders/%u002e', 400, 'invalid_path'],
  // invalid UTF-8: overlong forms, surrogates
  ['/api/orders/%c0%ae%c0%ae', 400, 'invalid_path'],
  ['/api/orders/%c0%af', 400, 'invalid_path'],
  ['/api/orders/%e0%80%ae', 400, 'invalid_path'],
  ['/api/orders/%ed%a0%80', 400, 'invalid_path'],
  ['/api/orders/%ff', 400, 'invalid_path'],
  // control characters
  ['/api/orders/%00', 400, 'invalid_path'],
  ['/api/orders%00', 400, 'invalid_path'],
  ['/api/orders/%0d%0aX-Injected:%201', 400, 'invalid_path'],
  ['/api/orders/%09', 400, 'invalid_path'],
  ['/api/orders/%7f', 400, 'invalid_path'],
  // Unicode that folds (NFKC) into path syntax
  ['/api/orders/%EF%BC%8F', 400, 'invalid_path'],
  ['/api/orders/%E2%80%A5', 400, 'invalid_path'],
  ['/api/orders/%EF%BC%8E%EF%BC%8E', 400, 'invalid_path'],
  ['/api/orders/%EF%BC%BC', 400, 'invalid_path'],
  // raw bytes outside printable ASCII
  // (Node's parser refuses these before any route: the generic 400 invalid_request)
  ['/api/orders/caf\xe9', 400, 'invalid_request'],
  // request targets that are not origin-form paths
  ['http://evil.example/api/orders', 400, 'invalid_path'],
  ['*', 400, 'invalid_path'],
  [`/api/orders/${'a'.repeat(2100)}`, 414, 'uri_too_long'],
  // not the route that was asked for: another prefix, another rule
  ['/API/orders', 404, 'not_found'],
  ['/apix/orders', 404, 'not_found'],
  ['/api/orders/', 403, 'forbidden'],
  ['/api', 403, 'forbidden'],
  ['/api/orders/7/items', 403, 'forbidden'],
]

describe('ambiguous or foreign request targets are refused and nothing is forwarded', () => {
  it.each(refused)('%s → %i %s', async (target, status, code) => {
    const response = await get(target)
    expect(response.status).toBe(status)
    expect(response.body).toEqual({ error: code, message: expect.any(String) })
    expect(response.exchange.text).toMatch(/content-type: application\/json/i)
    expect(stack.api.received).toEqual([])
  })

  it('refuses before authentication: an unsigned request with a bad path gets 400, not 401', async () => {
    const response = await get('/api/orders/%2e%2e', 'bff=nothing')
    expect(response.status).toBe(400)
    expect(response.body).toMatchObject({ error: 'invalid_path' })
  })

  it('applies to the gateway\'s own endpoints too', async () => {
    for (const target of ['/bff/user/..', '/bff//user', '/bff/user;x', '/bff/%75ser/%2e']) {
      const response = await get(target)
      expect(response.status, target).toBe(400)
      expect(response.body, target).toMatchObject({ error: 'invalid_path' })
    }
  })
})
