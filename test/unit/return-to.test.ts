import { describe, expect, it } from 'vitest'
import { MAX_RETURN_TO_LENGTH, parseReturnTo } from '../../gateway/auth/return-to.js'

describe('parseReturnTo: same-origin relative paths are kept as given', () => {
  const accepted: Array<[raw: string | undefined, path: string]> = [
    [undefined, '/'],
    ['', '/'],
    ['/', '/'],
    ['/orders', '/orders'],
    ['/orders/', '/orders/'],
    ['/orders?x=1', '/orders?x=1'],
    ['/a/b#c', '/a/b#c'],
    ['/orders?x=1#y', '/orders?x=1#y'],
    ['/orders/caf%C3%A9', '/orders/caf%C3%A9'],
    ['/search?q=a%20b', '/search?q=a%20b'],
    ['/login?next=%2Fdashboard', '/login?next=%2Fdashboard'],
    // `//` cannot change the origin from within the query or fragment.
    ['/login?next=https://example.com', '/login?next=https://example.com'],
    ['/#//evil', '/#//evil'],
    ['/a/../b', '/a/../b'],
    ['/@evil', '/@evil'],
  ]

  it.each(accepted)('%j → %j', (raw, path) => {
    expect(parseReturnTo(raw)).toEqual({ ok: true, path })
  })

  it(`accepts ${MAX_RETURN_TO_LENGTH} characters`, () => {
    const raw = '/' + 'a'.repeat(MAX_RETURN_TO_LENGTH - 1)
    expect(parseReturnTo(raw)).toEqual({ ok: true, path: raw })
  })
})

describe('parseReturnTo: the open-redirect family is refused', () => {
  const refused: string[] = [
    // another origin, spelled plainly
    '//evil',
    '//evil.com/path',
    '///evil',
    'https:evil',
    'https://evil',
    'http://gateway.invalid/orders',
    'javascript:alert(1)',
    'data:text/html,hi',
    'evil',
    'orders',
    // backslashes, which browsers read as "/"
    '/\\evil',
    '\\\\evil',
    '/orders\\x',
    '/orders?x=\\y',
    // percent-encoded separators, controls and double encoding in the path
    '/%5cevil',
    '/%5Cevil',
    '/%2f%2fevil',
    '/%2F/evil',
    '/%09/evil',
    '/%0a/evil',
    '/%00',
    '/%252f%252fevil',
    '/%zz',
    '/%C0%AF',
    // tabs and newlines, which URL parsers strip to reveal `//`
    '/\t/evil',
    '/\n/evil',
    '/\r/evil',
    '\t//evil',
    '/orders\n',
    // leading and other whitespace
    ' //evil',
    '/ evil',
    '/\u00a0evil',
    '/\u3000evil',
    '/\u200bevil',
    // Unicode lookalikes of "/", "\" and ".", raw or encoded
    '/／evil',
    '/∕evil',
    '/⁄evil',
    '/＼evil',
    '/﹨evil',
    '/⧵evil',
    '/．．/evil',
    '/%EF%BC%8F%EF%BC%8Fevil',
    '/%E2%88%95evil',
    '/%E2%80%A4%E2%80%A4/evil',
    // empty path segments anywhere in the path
    '/.//evil',
    '/a//b',
  ]

  it.each(refused)('%j is refused', (raw) => {
    expect(parseReturnTo(raw)).toEqual({ ok: false })
  })

  it(`refuses more than ${MAX_RETURN_TO_LENGTH} characters`, () => {
    expect(parseReturnTo('/' + 'a'.repeat(MAX_RETURN_TO_LENGTH))).toEqual({ ok: false })
  })
})
