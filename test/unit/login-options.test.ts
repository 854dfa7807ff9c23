/**
 * The login options `/bff/login` passes to the identity provider, and where a
 * silent login that the IdP could not complete sends the browser.
 */
import { describe, expect, it } from 'vitest'
import { forcingReauthentication, parseLoginOptions } from '../../gateway/auth/login-options.js'
import { withLoginError } from '../../gateway/auth/silent-login.js'

describe('parseLoginOptions', () => {
  it('passes every option through exactly as given, and leaves out what was not given', () => {
    const query = { returnTo: '/x', prompt: 'login consent', max_age: '0', acr_values: 'urn:mace:incommon:iap:silver phr', login_hint: 'Zoë <zoe@example.com>', ui_locales: 'fr-CA en' }
    expect(parseLoginOptions(query)).toEqual({
      ok: true,
      params: { prompt: 'login consent', max_age: '0', acr_values: 'urn:mace:incommon:iap:silver phr', login_hint: 'Zoë <zoe@example.com>', ui_locales: 'fr-CA en' },
    })
    expect(parseLoginOptions({ returnTo: '/' })).toEqual({ ok: true, params: {} })
    expect(parseLoginOptions({ prompt: 'none' })).toEqual({ ok: true, params: { prompt: 'none' } })
    expect(parseLoginOptions({ prompt: 'select_account' })).toEqual({ ok: true, params: { prompt: 'select_account' } })
  })

  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown prompt', { prompt: 'always' }, /^prompt must be/],
    ['none with another prompt', { prompt: 'none login' }, /^prompt none cannot be combined/],
    ['a prompt named twice', { prompt: 'login login' }, /^prompt must not name a value twice/],
    ['prompts separated by two spaces', { prompt: 'login  consent' }, /^prompt must be/],
    ['an option given twice', { prompt: ['login', 'none'] }, /^prompt must be given once/],
    ['an empty option', { acr_values: '' }, /^acr_values must not be empty/],
    ['a negative max_age', { max_age: '-1' }, /^max_age must be a whole number/],
    ['a fractional max_age', { max_age: '1.5' }, /^max_age must be a whole number/],
    ['a max_age with a sign', { max_age: '+60' }, /^max_age must be a whole number/],
    ['a max_age beyond any session', { max_age: '99999999999' }, /^max_age must be a whole number/],
    ['an acr value with a quote', { acr_values: 'urn:"x"' }, /^acr_values must be/],
    ['an acr value with a control character', { acr_values: 'urn:mfa\n' }, /^acr_values must be/],
    ['eleven acr values', { acr_values: Array.from({ length: 11 }, (_, i) => `a${i}`).join(' ') }, /^acr_values must be up to 10/],
    ['a login_hint with a newline', { login_hint: 'alice\r\nX-Injected: 1' }, /^login_hint must be printable text/],
    ['a login_hint with a bidi override', { login_hint: 'alice\u202e' }, /^login_hint must be printable text/],
    ['a login_hint that is too long', { login_hint: 'a'.repeat(257) }, /^login_hint must be printable text of at most 256/],
    ['ui_locales that are not language tags', { ui_locales: 'en_US' }, /^ui_locales must be/],
    ['ui_locales with a script', { ui_locales: 'en <script>' }, /^ui_locales must be/],
  ]
  it.each(refused)('refuses %s, naming the option', (_case, query, message) => {
    const result = parseLoginOptions(query)
    expect(result.ok).toBe(false)
    expect(result.ok ? '' : result.message).toMatch(message)
  })
})

describe('forcingReauthentication', () => {
  it('adds prompt=login to an interactive login, keeping what it asked for', () => {
    expect(forcingReauthentication({})).toEqual({ prompt: 'login' })
    expect(forcingReauthentication({ prompt: 'consent', acr_values: 'urn:mfa' })).toEqual({ prompt: 'consent login', acr_values: 'urn:mfa' })
    expect(forcingReauthentication({ prompt: 'login' })).toEqual({ prompt: 'login' })
  })

  it('keeps a silent login silent: max_age=0 makes the IdP answer login_required instead of reusing its session', () => {
    expect(forcingReauthentication({ prompt: 'none', max_age: '600' })).toEqual({ prompt: 'none', max_age: '0' })
  })
})

describe('withLoginError', () => {
  it.each([
    ['/', '/?error=login_required'],
    ['/app', '/app?error=login_required'],
    ['/app?tab=2', '/app?tab=2&error=login_required'],
    ['/app?', '/app?error=login_required'],
    ['/app?a=1&', '/app?a=1&error=login_required'],
    ['/app#section', '/app?error=login_required#section'],
    ['/app?q=a%20b+c#frag?x', '/app?q=a%20b+c&error=login_required#frag?x'],
  ])('adds the error to the query of %s, keeping the rest exactly', (returnTo, expected) => {
    expect(withLoginError(returnTo, 'login_required')).toBe(expected)
  })
})
