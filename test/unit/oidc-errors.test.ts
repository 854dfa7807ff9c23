/**
 * How openid-client's failures leave the OIDC wrapper: the IdP refused
 * (OidcRejectedError), what came back failed the client's own checks
 * (OidcResponseInvalidError), or the IdP could not be used (IdpUnavailable).
 * Every failure here is a real one, raised by openid-client itself against a
 * scripted token endpoint (its `customFetch`); no network. And what the token
 * refresher makes of a refresh answer that fails the checks.
 */
import * as client from 'openid-client'
import { describe, expect, it } from 'vitest'
import { IdpUnavailable, SessionExpired } from '../../gateway/errors.js'
import { OidcRejectedError, OidcResponseInvalidError, translateOidcError, type OidcClient } from '../../gateway/auth/oidc-client.js'
import { createTokenRefresher } from '../../gateway/auth/token-refresher.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { createSessionManager } from '../../gateway/session/sessions.js'
import { testRevocation } from '../helpers/revocation.js'

const ISSUER = 'https://idp.test'
const CALLBACK = 'https://app.test/bff/callback'
const STATE = 'the-state'

type TokenEndpoint = () => Promise<Response>

function configuration (tokenEndpoint: TokenEndpoint): client.Configuration {
  const config = new client.Configuration({
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/auth`,
    token_endpoint: `${ISSUER}/token`,
    jwks_uri: `${ISSUER}/jwks`,
    authorization_response_iss_parameter_supported: true,
  }, 'bff-gateway', 'a-client-secret')
  config[client.customFetch] = tokenEndpoint
  return config
}

const json = (status: number, body: unknown) => async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
const unreachable: TokenEndpoint = async () => { throw new Error('the token endpoint must not be called') }

/** What the wrapper makes of a code exchange for this callback query, against this token endpoint. */
async function exchange (query: Record<string, string>, tokenEndpoint: TokenEndpoint = unreachable): Promise<Error> {
  const url = new URL(CALLBACK)
  url.search = new URLSearchParams(query).toString()
  try {
    await client.authorizationCodeGrant(configuration(tokenEndpoint), url, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedState: STATE,
      expectedNonce: 'the-nonce',
      idTokenExpected: true,
    })
  } catch (error) {
    return translateOidcError(error)
  }
  throw new Error('the exchange succeeded')
}

/** What the wrapper makes of a refresh against this token endpoint. */
async function refresh (tokenEndpoint: TokenEndpoint): Promise<Error> {
  try {
    await client.refreshTokenGrant(configuration(tokenEndpoint), 'a-refresh-token')
  } catch (error) {
    return translateOidcError(error)
  }
  throw new Error('the refresh succeeded')
}

describe('a callback that fails the client\'s own checks: OidcResponseInvalidError', () => {
  it.each([
    ['another issuer', { state: STATE, iss: 'https://evil.test', code: 'c' }],
    ['no issuer', { state: STATE, code: 'c' }],
    ['another state', { state: 'other', iss: ISSUER, code: 'c' }],
    ['no code', { state: STATE, iss: ISSUER }],
    ['an ID token in a code-flow callback', { state: STATE, iss: ISSUER, code: 'c', id_token: 'x.y.z' }],
  ])('%s', async (_case, query) => {
    const error = await exchange(query)
    expect(error).toBeInstanceOf(OidcResponseInvalidError)
    expect((error as OidcResponseInvalidError).check).toMatch(/^OAUTH_/)
  })

  it.each([
    ['a body that is not JSON', async () => new Response('<html>hello</html>', { status: 200, headers: { 'content-type': 'text/html' } })],
    ['JSON without an access token', json(200, { token_type: 'Bearer' })],
    ['a token response without the ID token the login needs', json(200, { access_token: 'a', token_type: 'Bearer' })],
  ])('a token endpoint answering with %s', async (_case, tokenEndpoint) => {
    expect(await exchange({ state: STATE, iss: ISSUER, code: 'c' }, tokenEndpoint)).toBeInstanceOf(OidcResponseInvalidError)
  })
})

describe('the IdP\'s own OAuth errors: OidcRejectedError, with a code safe to count', () => {
  it('a registered error in the callback keeps its code', async () => {
    const error = await exchange({ state: STATE, iss: ISSUER, error: 'access_denied' })
    expect(error).toBeInstanceOf(OidcRejectedError)
    expect(error).toMatchObject({ oauthError: 'access_denied', reportedError: 'access_denied' })
  })

  it('a made-up error in the callback is "other"; what it said is kept apart, and not in the message', async () => {
    const reported = `made_up\n${'x'.repeat(5000)}`
    const error = await exchange({ state: STATE, iss: ISSUER, error: reported })
    expect(error).toBeInstanceOf(OidcRejectedError)
    expect(error).toMatchObject({ oauthError: 'other', reportedError: reported })
    expect(error.message).not.toContain('made_up')
  })

  it('invalid_grant from the token endpoint', async () => {
    const error = await refresh(json(400, { error: 'invalid_grant' }))
    expect(error).toBeInstanceOf(OidcRejectedError)
    expect(error).toMatchObject({ oauthError: 'invalid_grant' })
  })
})

describe('an IdP that cannot be used: IdpUnavailable', () => {
  it.each([
    ['a network failure', async () => { throw new TypeError('fetch failed') }],
    ['a timeout', async () => { throw new DOMException('The operation was aborted due to timeout', 'TimeoutError') }],
    ['an abort', async () => { throw new DOMException('This operation was aborted', 'AbortError') }],
    ['a 503 page', async () => new Response('<html>down</html>', { status: 503, headers: { 'content-type': 'text/html' } })],
    ['a 500 with an OAuth error body', json(500, { error: 'server_error' })],
    ['a 400 with an error that is not about the grant', json(400, { error: 'temporarily_unavailable' })],
  ] satisfies Array<[string, TokenEndpoint]>)('%s at the token endpoint', async (_case, tokenEndpoint) => {
    expect(await refresh(tokenEndpoint)).toBeInstanceOf(IdpUnavailable)
    expect(await exchange({ state: STATE, iss: ISSUER, code: 'c' }, tokenEndpoint)).toBeInstanceOf(IdpUnavailable)
  })

  it('anything unforeseen', () => {
    expect(translateOidcError(new Error('surprise'))).toBeInstanceOf(IdpUnavailable)
  })
})

describe('a refresh whose answer fails the checks', () => {
  it('is the IdP being unusable: the session and its refresh token are kept, nothing is taken for theft', async () => {
    const store = createMemoryStore()
    const sessions = createSessionManager({
      store,
      crypto: createSessionCrypto(['a-session-secret-for-unit-tests-0123456789']),
      idleTimeoutSeconds: 1800,
      absoluteTimeoutSeconds: 28_800,
    })
    const { session } = await sessions.create({ sub: 'alice', ip: '127.0.0.1', userAgent: 'test' }, {
      accessToken: 'old-access',
      refreshToken: 'old-refresh',
      accessTokenExpiresAt: Date.now() - 1000,
      claims: { sub: 'alice' },
      roles: ['user'],
    })
    const invalid = await refresh(json(200, { token_type: 'Bearer' }))
    expect(invalid).toBeInstanceOf(OidcResponseInvalidError)
    const oidc = { refresh: async () => { throw invalid } } as unknown as OidcClient
    const failures: string[] = []
    const rejected: string[] = []
    const refresher = createTokenRefresher({
      sessions,
      leases: store,
      revocation: testRevocation(store, sessions),
      revokeRefreshToken: async () => {},
      oidc,
      skewSeconds: 0,
      rolesClaim: 'roles',
      observer: {
        attempt () {},
        success () {},
        failure (reason) { failures.push(reason) },
        lockWait () {},
        grantRejected (_session, oauthError) { rejected.push(oauthError) },
      },
    })

    const outcome = await refresher.ensureFresh(session).catch((error: unknown) => error)
    expect(outcome).toBeInstanceOf(IdpUnavailable)
    expect(outcome).not.toBeInstanceOf(SessionExpired)
    expect(failures).toEqual(['idp_unavailable'])
    expect(rejected).toEqual([])
    const kept = await sessions.reload(session)
    expect(kept?.secrets.refreshToken).toBe('old-refresh')
  })
})
