/**
 * Step-up as plain logic, on a fake clock: whether a session meets a rule's
 * `acr` / `maxAge`, the login URL that asks for what it lacks, where the
 * browser comes back to, and an upstream's RFC 9470 challenge.
 */
import { describe, expect, it } from 'vitest'
import { stepUpLoginUrl, stepUpReturnTo, stepUpShortfall, trustedAcr } from '../../gateway/auth/step-up.js'
import { insufficientUserAuthentication } from '../../gateway/proxy/step-up-challenge.js'
import type { SessionSecrets } from '../../gateway/session/active-session.js'

const NOW = Date.UTC(2030, 0, 1, 12)
const SECOND = 1000

function signedIn (authentication: { acr?: string, authTime?: number, acrForgotten?: boolean }) {
  const { acrForgotten, ...rest } = authentication
  const secrets: SessionSecrets = { accessToken: 'a', accessTokenExpiresAt: NOW + 60_000, csrfToken: 'c', claims: {}, roles: [], ...rest }
  return { secrets, ...(acrForgotten ? { acrForgotten } : {}) }
}

describe('stepUpShortfall', () => {
  it('lets a session through that signed in with one of the acr values', () => {
    expect(stepUpShortfall({ acrValues: ['urn:mfa', 'urn:hw'] }, signedIn({ acr: 'urn:hw' }), NOW)).toBeUndefined()
  })

  it('asks for a step-up when the acr is another, absent, or forgotten since', () => {
    const need = { acrValues: ['urn:mfa'] }
    expect(stepUpShortfall(need, signedIn({ acr: 'urn:password' }), NOW)).toEqual(need)
    expect(stepUpShortfall(need, signedIn({}), NOW)).toEqual(need)
    expect(stepUpShortfall(need, signedIn({ acr: 'urn:mfa', acrForgotten: true }), NOW)).toEqual(need)
  })

  it('lets a sign-in through up to maxAge seconds old, and asks again one moment later', () => {
    const need = { maxAge: 300 }
    expect(stepUpShortfall(need, signedIn({ authTime: NOW - 300 * SECOND }), NOW)).toBeUndefined()
    expect(stepUpShortfall(need, signedIn({ authTime: NOW - 300 * SECOND - 1 }), NOW)).toEqual(need)
    expect(stepUpShortfall(need, signedIn({ authTime: NOW }), NOW)).toBeUndefined()
  })

  it('counts whole seconds, as auth_time and the IdP\'s max_age check do: a sign-in at second S passes until S + maxAge is over', () => {
    // Had the gateway counted milliseconds, the login it asks for in that last second would be
    // answered from the IdP's session with the same auth_time, and fall short again.
    const need = { maxAge: 300 }
    const authTime = NOW - 300 * SECOND
    expect(stepUpShortfall(need, signedIn({ authTime }), NOW + 999)).toBeUndefined()
    expect(stepUpShortfall(need, signedIn({ authTime }), NOW + SECOND)).toEqual(need)
  })

  it('takes a session without auth_time to be too old (the IdP gives one when asked for max_age)', () => {
    expect(stepUpShortfall({ maxAge: 3600 }, signedIn({ acr: 'urn:mfa' }), NOW)).toEqual({ maxAge: 3600 })
  })

  it('asks for all of a rule again when any part falls short, so the new sign-in keeps its level', () => {
    const need = { acrValues: ['urn:mfa'], maxAge: 60 }
    expect(stepUpShortfall(need, signedIn({ acr: 'urn:mfa', authTime: NOW - 61 * SECOND }), NOW)).toEqual(need)
    expect(stepUpShortfall(need, signedIn({ acr: 'urn:mfa', authTime: NOW - 59 * SECOND }), NOW)).toBeUndefined()
  })
})

describe('trustedAcr', () => {
  it('is the session\'s acr until the IdP said its assurance level changed', () => {
    expect(trustedAcr(signedIn({ acr: 'urn:mfa' }))).toBe('urn:mfa')
    expect(trustedAcr(signedIn({ acr: 'urn:mfa', acrForgotten: true }))).toBeUndefined()
  })
})

describe('stepUpLoginUrl', () => {
  it('carries what is needed and where to come back to, encoded', () => {
    expect(stepUpLoginUrl({ acrValues: ['urn:mfa', 'phr'], maxAge: 60 }, '/orders?tab=1&x=a b'))
      .toBe('/bff/login?returnTo=%2Forders%3Ftab%3D1%26x%3Da%20b&acr_values=urn%3Amfa%20phr&max_age=60')
    expect(stepUpLoginUrl({ maxAge: 300 }, '/')).toBe('/bff/login?returnTo=%2F&max_age=300')
  })

  it('asks for a fresh sign-in when nothing more precise is known', () => {
    expect(stepUpLoginUrl({}, '/')).toBe('/bff/login?returnTo=%2F&prompt=login')
  })

  it('round-trips through a URL parser', () => {
    const url = new URL(stepUpLoginUrl({ acrValues: ['urn:a', 'urn:b'] }, '/page?q=1'), 'https://app.example.com')
    expect(url.searchParams.get('acr_values')).toBe('urn:a urn:b')
    expect(url.searchParams.get('returnTo')).toBe('/page?q=1')
  })
})

describe('stepUpReturnTo', () => {
  const origin = 'https://app.example.com'
  it.each([
    ['the page that asked, with its query', 'https://app.example.com/orders/7?tab=items', '/orders/7?tab=items'],
    ['no Referer', undefined, '/'],
    ['another origin', 'https://evil.example/orders', '/'],
    ['another port', 'https://app.example.com:8443/orders', '/'],
    ['not a URL', 'not a url', '/'],
    ['a path returnTo refuses', 'https://app.example.com/a//b', '/'],
  ])('%s', (_case, referer, expected) => {
    expect(stepUpReturnTo(referer, origin)).toBe(expected)
  })
})

describe('insufficientUserAuthentication (RFC 9470)', () => {
  it('reads acr_values and max_age of the Bearer challenge', () => {
    expect(insufficientUserAuthentication('Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"'))
      .toEqual({ acrValues: ['myACR'] })
    expect(insufficientUserAuthentication('Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"'))
      .toEqual({ maxAge: 5 })
    expect(insufficientUserAuthentication('Bearer realm="api", error=insufficient_user_authentication, acr_values="urn:a urn:b", max_age=60'))
      .toEqual({ acrValues: ['urn:a', 'urn:b'], maxAge: 60 })
  })

  it('finds it among other challenges and headers, whatever the case of the scheme', () => {
    expect(insufficientUserAuthentication(['Basic realm="x"', 'DPoP algs="ES256", error="insufficient_user_authentication", max_age="10"']))
      .toEqual({ maxAge: 10 })
    expect(insufficientUserAuthentication('Basic dXNlcjpwYXNz==, bearer error="insufficient_user_authentication" , acr_values="urn:x\\"y"'))
      .toEqual({})
  })

  it('asks for a fresh sign-in when the parameters are missing or unusable', () => {
    expect(insufficientUserAuthentication('Bearer error="insufficient_user_authentication"')).toEqual({})
    expect(insufficientUserAuthentication('Bearer error="insufficient_user_authentication", max_age="-3", acr_values=""')).toEqual({})
  })

  it('is nothing for any other challenge', () => {
    expect(insufficientUserAuthentication(undefined)).toBeUndefined()
    expect(insufficientUserAuthentication('Bearer')).toBeUndefined()
    expect(insufficientUserAuthentication('Bearer error="invalid_token"')).toBeUndefined()
    expect(insufficientUserAuthentication('Basic error="insufficient_user_authentication"')).toBeUndefined()
    expect(insufficientUserAuthentication('Bearer error_description="insufficient_user_authentication"')).toBeUndefined()
    expect(insufficientUserAuthentication(`Bearer error="insufficient_user_authentication", x="${'a'.repeat(9000)}"`)).toBeUndefined()
  })
})
