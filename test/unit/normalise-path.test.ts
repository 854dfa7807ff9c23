import { describe, expect, it } from 'vitest'
import { MAX_PATH_LENGTH, normaliseRequestPath } from '../../gateway/proxy/normalise-path.js'

describe('normaliseRequestPath: accepted paths and what the upstream receives', () => {
  const accepted: Array<[raw: string, path: string, segments: string[]]> = [
    ['/', '/', ['']],
    ['/api', '/api', ['api']],
    ['/api/orders/123', '/api/orders/123', ['api', 'orders', '123']],
    ['/api/orders/', '/api/orders/', ['api', 'orders', '']],
    ['/api/orders/%61bc', '/api/orders/abc', ['api', 'orders', 'abc']],
    ['/api/%7Euser', '/api/~user', ['api', '~user']],
    ['/api/caf%C3%A9', '/api/caf%C3%A9', ['api', 'café']],
    ['/api/caf%c3%a9', '/api/caf%C3%A9', ['api', 'café']],
    ['/api/%E2%82%AC', '/api/%E2%82%AC', ['api', '€']],
    ['/api/%F0%9F%98%80', '/api/%F0%9F%98%80', ['api', '😀']],
    ['/api/a%20b', '/api/a%20b', ['api', 'a b']],
    ['/api/a+b', '/api/a%2Bb', ['api', 'a+b']],
    ['/api/a:b', '/api/a%3Ab', ['api', 'a:b']],
    ['/api/a@b', '/api/a%40b', ['api', 'a@b']],
    ['/api/a[b]|c', '/api/a%5Bb%5D%7Cc', ['api', 'a[b]|c']],
    ["/api/it's(1)", "/api/it's(1)", ['api', "it's(1)"]],
    ['/api/x%3Fy', '/api/x%3Fy', ['api', 'x?y']],
    ['/api/x%23y', '/api/x%23y', ['api', 'x#y']],
    ['/api/a.b', '/api/a.b', ['api', 'a.b']],
    ['/api/...', '/api/...', ['api', '...']],
    ['/api/.hidden', '/api/.hidden', ['api', '.hidden']],
    ['/api/a-b_c~d', '/api/a-b_c~d', ['api', 'a-b_c~d']],
    // A compatibility character that folds to "." inside a segment is harmless.
    ['/api/a%EF%BC%8Eb', '/api/a%EF%BC%8Eb', ['api', 'a．b']],
    // A leading byte-order mark is kept, not silently dropped into `admin`.
    ['/api/%EF%BB%BFadmin', '/api/%EF%BB%BFadmin', ['api', '\uFEFFadmin']],
  ]

  it.each(accepted)('%s → %s', (raw, path, segments) => {
    expect(normaliseRequestPath(raw)).toEqual({ ok: true, path, segments })
  })

  it(`accepts a path of ${MAX_PATH_LENGTH} bytes`, () => {
    const raw = '/' + 'a'.repeat(MAX_PATH_LENGTH - 1)
    expect(normaliseRequestPath(raw)).toEqual({ ok: true, path: raw, segments: [raw.slice(1)] })
  })

  it.each(accepted)('%s: the canonical form normalises to itself', (raw) => {
    const once = normaliseRequestPath(raw)
    if (!once.ok) throw new Error(once.reason)
    expect(normaliseRequestPath(once.path)).toEqual(once)
  })
})

describe('normaliseRequestPath: ambiguous and hostile paths are refused', () => {
  const refused: Array<[raw: string, reason: RegExp]> = [
    ['', /start with "\/"/],
    ['api/orders', /start with "\/"/],
    ['*', /start with "\/"/],

    ['/api/../admin', /dot-segment/],
    ['/api/..', /dot-segment/],
    ['/..', /dot-segment/],
    ['/api/./x', /dot-segment/],
    ['/api/.', /dot-segment/],
    ['/api/%2e%2e/admin', /encoded "\."/],
    ['/api/%2E%2e/x', /encoded "\."/],
    ['/api/.%2e/x', /encoded "\."/],
    ['/api/%2e/x', /encoded "\."/],

    ['/api//x', /empty segment/],
    ['//api/x', /empty segment/],
    ['/api/x//', /empty segment/],

    ['/api/x%2fy', /encoded "\/"/],
    ['/api/x%2Fy', /encoded "\/"/],
    ['/api/x%5cy', /encoded backslash/],
    ['/api\\x', /backslash/],
    ['/api/x;jsessionid=1', /";"/],
    ['/api/x%3Bjsessionid=1', /encoded ";"/],
    ['/api/x#y', /"#"/],
    ['/api/x?y', /"\?"/],

    ['/api/%00', /control/],
    ['/api/x\u0000', /control/],
    ['/api/x%0d%0a', /control/],
    ['/api/x%09', /control/],
    ['/api/x\t', /control/],
    ['/api/x%7F', /control/],
    ['/api/x%C2%85', /control/],
    ['/api/a b', /space/],
    ['/api/café', /non-ASCII/],

    ['/api/%zz', /malformed/],
    ['/api/%4', /malformed/],
    ['/api/%', /malformed/],
    ['/api/%g0', /malformed/],

    ['/api/%C0%AF', /not valid UTF-8/],
    ['/api/%E0%80%AF', /not valid UTF-8/],
    ['/api/%ED%A0%80', /not valid UTF-8/],
    ['/api/%F4%90%80%80', /not valid UTF-8/],
    ['/api/%C3', /not valid UTF-8/],
    ['/api/%FF', /not valid UTF-8/],

    ['/api/%252e%252e/', /double encoding/],
    ['/api/%252f', /double encoding/],
    ['/api/100%25', /double encoding/],

    ['/api/%EF%BC%8Fadmin', /Unicode folding/],
    ['/api/%EF%BC%BCadmin', /Unicode folding/],
    ['/api/%EF%BC%8E%EF%BC%8E', /Unicode folding/],
    ['/api/%E2%80%A5', /Unicode folding/],
    ['/api/x%EF%BC%9Fy', /Unicode folding/],
  ]

  it(`refuses a path longer than ${MAX_PATH_LENGTH} bytes`, () => {
    expect(normaliseRequestPath('/' + 'a'.repeat(MAX_PATH_LENGTH))).toEqual({ ok: false, reason: `longer than ${MAX_PATH_LENGTH} bytes` })
  })

  it.each(refused)('%j is refused', (raw, reason) => {
    const result = normaliseRequestPath(raw)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.reason).toMatch(reason)
  })
})
