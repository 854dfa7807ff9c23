/**
 * `_method` as the frameworks that honour it would read it: in a query string
 * or form body, in the headers of a multipart part, and which bodies hold
 * parameters at all.
 */
import { describe, expect, it } from 'vitest'
import { bodyKind, hasMethodParam, isMethodParamName, multipartBoundary, partNamesMethodParam } from '../../gateway/proxy/method-override.js'

describe('isMethodParamName (a decoded name)', () => {
  it.each([
    '_method', '_METHOD', '_Method', ' _method', '  _method',
    // PHP drops leading spaces, renames ` `, `.` and `[` to `_`, and reads `_method[…]` as an array named `_method`.
    '.method', '[method', '_method[]', '_method[x]', '_method\0tail',
  ])('%j is', (name) => {
    expect(isMethodParamName(name)).toBe(true)
  })

  it.each(['method', ' method', 'x_method', '_methods', '_method_', '_method[', '__method', '', '_meth', 'override'])('%j is not', (name) => {
    expect(isMethodParamName(name)).toBe(false)
  })
})

describe('hasMethodParam (an encoded query string or form body)', () => {
  it.each([
    '_method=DELETE',
    'a=1&_method=DELETE',
    '%5Fmethod=DELETE',
    '%5fMETHOD=put',
    '_%6Dethod=PATCH',
    '%5F%6D%65%74%68%6F%64=DELETE',
    '+_method=DELETE',
    'a=1;_method=DELETE',
    '_method',
    '_method%5B%5D=DELETE',
    '.method=DELETE',
    '_method%00=DELETE',
  ])('%s has one', (encoded) => {
    expect(hasMethodParam(encoded)).toBe(true)
  })

  it.each([
    '',
    'page=2',
    'method=DELETE',
    'q=_method',
    'note=%5Fmethod',
    'x_method=1&_methods=2',
    '%255Fmethod=DELETE',
    'bad=%E0%A4%A&%ZZ=1',
  ])('%j has none', (encoded) => {
    expect(hasMethodParam(encoded)).toBe(false)
  })
})

describe('bodyKind', () => {
  it.each<[string | undefined, string]>([
    [undefined, 'form'],
    ['', 'form'],
    ['application/x-www-form-urlencoded', 'form'],
    ['Application/X-WWW-Form-URLEncoded; charset=UTF-8', 'form'],
    ['application/x-www-form-urlencoded,text/plain', 'form'],
    ['application/x-www-form-urlencoded foo', 'form'],
    ['multipart/form-data; boundary=x', 'multipart'],
    ['Multipart/Mixed; boundary=x', 'multipart'],
    ['application/json', 'other'],
    ['text/plain', 'other'],
    ['application/x-www-form-urlencoded-not', 'other'],
  ])('%j → %s', (contentType, kind) => {
    expect(bodyKind(contentType)).toBe(kind)
  })
})

describe('multipartBoundary', () => {
  it.each<[string, string | undefined]>([
    ['multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW', '----WebKitFormBoundary7MA4YWxkTrZu0gW'],
    ['multipart/form-data; boundary="quoted-boundary"', 'quoted-boundary'],
    ['multipart/form-data; charset=utf-8; BOUNDARY = abc', 'abc'],
    ['multipart/form-data', undefined],
    ['multipart/form-data; boundary=', undefined],
    ['multipart/form-data; boundary=a; boundary=b', undefined],
    ['multipart/form-data; x="boundary=a"; boundary=b', undefined],
    ['multipart/form-data; boundary="has space"', undefined],
    ['multipart/form-data; boundary=a,b', 'a'],
    ['multipart/form-data; boundary=aboundary=b', undefined],
    ['multipart/form-data; x=boundaryA; y=B; boundary=zzz', undefined],
    ['multipart/form-data; boundary="===============1234=="', '===============1234=='],
    [`multipart/form-data; boundary=${'b'.repeat(71)}`, undefined],
  ])('%s → %s', (contentType, boundary) => {
    expect(multipartBoundary(contentType)).toBe(boundary)
  })
})

describe('partNamesMethodParam (the header block of one part)', () => {
  it.each([
    'Content-Disposition: form-data; name="_method"\r\n\r\n',
    'Content-Disposition: form-data; name=_method\r\n\r\n',
    'content-disposition: form-data;name="_METHOD"\r\n\r\n',
    'Content-Disposition: form-data; name = "_method"\r\n\r\n',
    "Content-Disposition: form-data; name*=utf-8''%5Fmethod\r\n\r\n",
    'Content-Disposition: form-data; name="item"; name="_method"\r\n\r\n',
    'Content-Disposition: form-data; name="_meth\\od"\r\n\r\n',
    'Content-Disposition: form-data; name="%5Fmethod"\r\n\r\n',
    'Content-Disposition: form-data; name=".method"\r\n\r\n',
    'Content-Disposition: form-data; name="_method',
    'Content-Type: text/plain\r\nContent-Disposition: form-data;\r\n name="_method"\r\n\r\n',
  ])('%j names it', (headers) => {
    expect(partNamesMethodParam(headers)).toBe(true)
  })

  it.each([
    'Content-Disposition: form-data; name="item"\r\n\r\n',
    'Content-Disposition: form-data; name="file"; filename="_method"\r\n\r\n',
    'Content-Disposition: form-data; name="_methods"\r\n\r\n',
    'Content-Disposition: form-data; name=""\r\n\r\n',
    'Content-Type: text/plain\r\n\r\n',
  ])('%j does not', (headers) => {
    expect(partNamesMethodParam(headers)).toBe(false)
  })
})
