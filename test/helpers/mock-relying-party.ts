/**
 * A real OIDC relying party (openid-client) for tests of the mock IdP on its
 * own: builds authorization requests (optionally pushed, PAR), drives the
 * IdP's pages with the test browser, and exchanges the code, optionally with
 * a DPoP key. The callback URL is never visited; nothing needs to listen there.
 */
import { createHash, randomUUID } from 'node:crypto'
import { SignJWT, exportJWK } from 'jose'
import * as client from 'openid-client'
import type { IdentityProvider } from '../../upstream-mock/idp.js'
import { HttpBrowser } from './http-browser.js'
import { authenticateAtIdp, capture } from './login-flow.js'
import type { CapturedResponse, Credentials, IdpStepResult } from './login-flow.js'

export const RP_REDIRECT_URI = 'http://127.0.0.1:9/bff/callback'
export const RP_SCOPE = 'openid profile email offline_access'

export interface AuthorizationRequest {
  url: string
  checks: client.AuthorizationCodeGrantChecks & { pkceCodeVerifier: string }
}

export interface AuthorizationOptions {
  /** Extra parameters; a URLSearchParams may repeat one (several `resource`s). */
  params?: Record<string, string> | URLSearchParams
  /** Pushes the request first (RFC 9126) and sends only `client_id` and `request_uri`. */
  par?: boolean
}

export interface SignInOptions extends AuthorizationOptions {
  browser?: HttpBrowser
  /** Binds the code exchange's tokens to this key. */
  dpop?: client.DPoPHandle
  /** Extra token request parameters, e.g. `{ resource }`. */
  tokenParams?: Record<string, string>
}

export interface SignInResult {
  browser: HttpBrowser
  tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
  idpStep: IdpStepResult
}

export class MockRelyingParty {
  readonly config: client.Configuration
  readonly redirectUri: string

  constructor (config: client.Configuration, redirectUri: string) {
    this.config = config
    this.redirectUri = redirectUri
  }

  static async discover (idp: IdentityProvider, clientId: string, auth: client.ClientAuth, redirectUri = RP_REDIRECT_URI): Promise<MockRelyingParty> {
    const config = await client.discovery(new URL(idp.issuer), clientId, undefined, auth, { execute: [client.allowInsecureRequests] })
    return new MockRelyingParty(config, redirectUri)
  }

  async authorizationRequest (options: AuthorizationOptions = {}): Promise<AuthorizationRequest> {
    const pkceCodeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const params = new URLSearchParams({
      redirect_uri: this.redirectUri,
      scope: RP_SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    const extra = options.params instanceof URLSearchParams ? options.params : new URLSearchParams(options.params)
    for (const name of new Set(extra.keys())) params.delete(name)
    for (const [name, value] of extra) params.append(name, value)
    const url = options.par
      ? await client.buildAuthorizationUrlWithPAR(this.config, params)
      : client.buildAuthorizationUrl(this.config, params)
    return { url: url.href, checks: { pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true } }
  }

  async signIn (credentials: Credentials, options: SignInOptions = {}): Promise<SignInResult> {
    const browser = options.browser ?? new HttpBrowser()
    const request = await this.authorizationRequest(options)
    const idpStep = await authenticateAtIdp(browser, request.url, this.redirectUri, credentials)
    const tokens = await client.authorizationCodeGrant(
      this.config,
      new URL(idpStep.callbackUrl),
      request.checks,
      options.tokenParams,
      options.dpop ? { DPoP: options.dpop } : undefined
    )
    return { browser, tokens, idpStep }
  }

  /**
   * Follows an authorization request through the IdP without typing anything: where it
   * ends, the callback URL (a code or an error), or the page it stopped at.
   */
  async follow (browser: HttpBrowser, url: string): Promise<{ callbackUrl?: URL, page: CapturedResponse }> {
    const clientOrigin = new URL(this.redirectUri).origin
    let page = await capture(browser, url)
    for (let hop = 0; page.location && hop < 20; hop += 1) {
      if (new URL(page.location).origin === clientOrigin) return { callbackUrl: new URL(page.location), page }
      page = await capture(browser, page.location)
    }
    return { page }
  }
}

export interface DpopProofClaims {
  htm: string
  htu: string
  /** Default now. */
  iat?: number
  /** Default a fresh UUID. */
  jti?: string
  nonce?: string
  /** The access token the proof goes with; its hash becomes `ath`. */
  accessToken?: string
}

/** A DPoP proof (RFC 9449) signed by `keyPair`, with any claim set by hand, for negative tests. */
export async function createDpopProof (keyPair: CryptoKeyPair, claims: DpopProofClaims, alg = 'ES256'): Promise<string> {
  const { accessToken, iat, jti, ...rest } = claims
  return new SignJWT({
    ...rest,
    iat: iat ?? Math.floor(Date.now() / 1000),
    jti: jti ?? randomUUID(),
    ...(accessToken !== undefined ? { ath: createHash('sha256').update(accessToken).digest('base64url') } : {}),
  })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .sign(keyPair.privateKey)
}
