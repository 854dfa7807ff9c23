/**
 * What a native app's `/bff/login?client=native` must carry, where its sign-in
 * goes back to, and which error the app hears.
 */
import { describe, expect, it } from 'vitest'
import { appRedirect, nativeLoginError, nativeLoginOf } from '../../gateway/auth/native-login.js'
import { OidcRejectedError } from '../../gateway/auth/oidc-client.js'
import { IdpUnavailable, LoginFailed, SessionStoreUnavailable } from '../../gateway/errors.js'

const REGISTERED = ['com.example.app:/oauth2redirect', 'https://app.example.com/native/done']
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
const good = { client: 'native', redirect_uri: REGISTERED[0], code_challenge: CHALLENGE, code_challenge_method: 'S256', state: 'app-state-1' }

const codeOf = (query: Record<string, unknown>): string => {
  try {
    nativeLoginOf(query, REGISTERED)
  } catch (error) {
    return (error as { code: string }).code
  }
  return 'accepted'
}

describe('nativeLoginOf', () => {
  it('is undefined for a browser\'s login (no client)', () => {
    expect(nativeLoginOf({ returnTo: '/x' }, REGISTERED)).toBeUndefined()
  })

  it('gives the redirect URI, challenge and the app\'s state', () => {
    expect(nativeLoginOf(good, REGISTERED)).toEqual({ redirectUri: REGISTERED[0], codeChallenge: CHALLENGE, state: 'app-state-1' })
    expect(nativeLoginOf({ ...good, redirect_uri: REGISTERED[1] }, REGISTERED)?.redirectUri).toBe(REGISTERED[1])
  })

  it.each([
    ['missing', undefined],
    ['unregistered', 'com.evil.app:/oauth2redirect'],
    ['registered but for a trailing slash', 'com.example.app:/oauth2redirect/'],
    ['registered but for case', 'COM.EXAMPLE.APP:/oauth2redirect'],
    ['registered plus a query', 'https://app.example.com/native/done?x=1'],
    ['given twice', [REGISTERED[0], REGISTERED[0]]],
  ])('refuses a redirect_uri %s with invalid_redirect_uri, before anything else', (_case, redirectUri) => {
    expect(codeOf({ ...good, redirect_uri: redirectUri, code_challenge: undefined, state: undefined })).toBe('BFF_INVALID_REDIRECT_URI')
  })

  it.each([
    ['another client', { client: 'web' }],
    ['no code_challenge', { code_challenge: undefined }],
    ['a short code_challenge', { code_challenge: CHALLENGE.slice(1) }],
    ['a padded code_challenge', { code_challenge: `${CHALLENGE.slice(1)}=` }],
    ['the plain method', { code_challenge_method: 'plain' }],
    ['no method', { code_challenge_method: undefined }],
    ['no state', { state: undefined }],
    ['an empty state', { state: '' }],
    ['a state with a space', { state: 'a b' }],
    ['a state too long', { state: 's'.repeat(513) }],
  ])('refuses %s with invalid_request', (_case, change) => {
    expect(codeOf({ ...good, ...change })).toBe('BFF_INVALID_REQUEST')
  })
})

describe('appRedirect', () => {
  const native = { redirectUri: REGISTERED[0]!, codeChallenge: CHALLENGE, state: 'a&b=c' }

  it('adds the code and the app\'s state, encoded', () => {
    const url = new URL(appRedirect(native, { code: 'the-code' }))
    expect(`${url.protocol}${url.pathname}`).toBe(REGISTERED[0])
    expect(Object.fromEntries(url.searchParams)).toEqual({ code: 'the-code', state: 'a&b=c' })
  })

  it('adds an error instead, with the state', () => {
    const url = new URL(appRedirect({ ...native, redirectUri: REGISTERED[1]! }, { error: 'access_denied' }))
    expect(url.origin + url.pathname).toBe(REGISTERED[1])
    expect(Object.fromEntries(url.searchParams)).toEqual({ error: 'access_denied', state: 'a&b=c' })
  })
})

describe('nativeLoginError', () => {
  it('passes on what the IdP said about the user', () => {
    expect(nativeLoginError(new LoginFailed({ cause: new OidcRejectedError('access_denied') }))).toBe('access_denied')
    expect(nativeLoginError(new LoginFailed({ cause: new OidcRejectedError('login_required') }))).toBe('login_required')
  })

  it('gives the gateway\'s public code otherwise', () => {
    expect(nativeLoginError(new LoginFailed({ cause: new OidcRejectedError('invalid_grant') }))).toBe('login_failed')
    expect(nativeLoginError(new LoginFailed({ cause: new OidcRejectedError('<script>') }))).toBe('login_failed')
    expect(nativeLoginError(new IdpUnavailable())).toBe('idp_unavailable')
    expect(nativeLoginError(new SessionStoreUnavailable())).toBe('session_store_unavailable')
  })

  it('says server_error for the unforeseen', () => {
    expect(nativeLoginError(new TypeError('boom'))).toBe('server_error')
    expect(nativeLoginError(undefined)).toBe('server_error')
  })
})
