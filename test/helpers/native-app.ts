/**
 * A native app as the gateway sees one, for tests: a non-extractable ES256
 * key in WebCrypto (standing in for the Secure Enclave or Android Keystore),
 * a sign-in through a "system browser" (an HttpBrowser driven through
 * /bff/login?client=native, the IdP's form and the callback, following
 * redirects by hand until the gateway sends it to the app's redirect URI),
 * the handoff code redeemed at POST /bff/native/session, and then every call
 * with `Authorization: Session …` and a fresh DPoP proof.
 */
import { createHash, randomBytes, randomUUID, webcrypto } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose'
import { HttpBrowser } from './http-browser.js'
import { authenticateAtIdp, capture, startLogin, type CapturedResponse } from './login-flow.js'

export const APP_REDIRECT_URI = 'com.example.bffapp:/oauth2redirect'
export const APP_USER_AGENT = 'ExampleApp/2.1 CFNetwork/1490 Darwin/23.2.0'

export interface Pkce { verifier: string, challenge: string }

export function newPkce (): Pkce {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export interface AppKey {
  privateKey: webcrypto.CryptoKey
  jwk: JWK
  jkt: string
}

export async function newAppKey (): Promise<AppKey> {
  // Non-extractable, like a key in the Secure Enclave: the app can sign with it, never read it.
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
  const jwk = await exportJWK(pair.publicKey)
  return { privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) }
}

/** A DPoP proof by `key` for `method` and `url` (query and fragment are ignored by the gateway); `claims` override. */
export async function dpopProof (key: AppKey, method: string, url: string, claims: JWTPayload = {}): Promise<string> {
  return new SignJWT({ htm: method, htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .sign(key.privateKey)
}

export interface NativeHandoff {
  /** The gateway's answer to /bff/callback: a redirect to the app. */
  callback: CapturedResponse
  /** Where it sent the system browser. */
  location: URL
  code: string | null
  state: string | null
  error: string | null
  /** The PKCE pair the app started with. */
  pkce: Pkce
}

export interface NativeSignInOptions {
  username?: string
  password?: string
  redirectUri?: string
  /** The system browser, to sign in again with its IdP session. */
  browser?: HttpBrowser
}

/** The login in the system browser, up to the gateway's redirect to the app; the code is not redeemed. */
export async function nativeHandoff (gatewayUrl: string, options: NativeSignInOptions = {}): Promise<NativeHandoff> {
  const browser = options.browser ?? new HttpBrowser()
  const username = options.username ?? 'alice'
  const pkce = newPkce()
  const state = randomBytes(16).toString('base64url')
  const { authorizationUrl } = await startLogin(browser, gatewayUrl, {
    query: { client: 'native', redirect_uri: options.redirectUri ?? APP_REDIRECT_URI, code_challenge: pkce.challenge, code_challenge_method: 'S256', state },
  })
  const idp = await authenticateAtIdp(browser, authorizationUrl, gatewayUrl, { username, password: options.password ?? `${username}-password` })
  const callback = await capture(browser, idp.callbackUrl)
  if (!callback.location) throw new Error(`the callback did not redirect: ${callback.status} ${callback.body}`)
  const location = new URL(callback.location)
  return {
    callback,
    location,
    code: location.searchParams.get('code'),
    state: location.searchParams.get('state'),
    error: location.searchParams.get('error'),
    pkce,
  }
}

/** POST /bff/native/session with a proof by `key` (or `proof` as given; null for none). */
export async function redeem (gatewayUrl: string, key: AppKey, body: Record<string, unknown>, proof?: string | null): Promise<Response> {
  const url = `${gatewayUrl}/bff/native/session`
  const header = proof === undefined ? await dpopProof(key, 'POST', url) : proof
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': APP_USER_AGENT, ...(header === null ? {} : { dpop: header }) },
    body: JSON.stringify(body),
  })
}

export interface NativeSession {
  session: string
  expiresAt: string
  idleExpiresAt: string
}

export class NativeApp {
  readonly gatewayUrl: string
  readonly key: AppKey
  readonly credential: string
  readonly sub: string

  private constructor (gatewayUrl: string, key: AppKey, credential: string, sub: string) {
    this.gatewayUrl = gatewayUrl
    this.key = key
    this.credential = credential
    this.sub = sub
  }

  /** Signs in through the system browser and redeems the code for a session bound to a new key. */
  static async signIn (gatewayUrl: string, options: NativeSignInOptions & { deviceName?: string } = {}): Promise<NativeApp> {
    const key = await newAppKey()
    const handoff = await nativeHandoff(gatewayUrl, options)
    if (!handoff.code) throw new Error(`no handoff code: ${handoff.location.href}`)
    const response = await redeem(gatewayUrl, key, {
      code: handoff.code,
      code_verifier: handoff.pkce.verifier,
      ...(options.deviceName !== undefined ? { deviceName: options.deviceName } : {}),
    })
    if (response.status !== 200) throw new Error(`POST /bff/native/session answered ${response.status}: ${await response.text()}`)
    const { session } = await response.json() as NativeSession
    return new NativeApp(gatewayUrl, key, session, options.username ?? 'alice')
  }

  /** A call to the gateway with the credential and a fresh proof for it, as the app makes them. */
  async fetch (path: string, init: RequestInit & { proof?: string | null, baseUrl?: string } = {}): Promise<Response> {
    const { proof, baseUrl, ...rest } = init
    const url = `${baseUrl ?? this.gatewayUrl}${path}`
    const method = (rest.method ?? 'GET').toUpperCase()
    const header = proof === undefined ? await this.proof(method, `${this.gatewayUrl}${path}`) : proof
    return fetch(url, {
      ...rest,
      headers: {
        'user-agent': APP_USER_AGENT,
        authorization: `Session ${this.credential}`,
        ...(header === null ? {} : { dpop: header }),
        ...(rest.headers as Record<string, string> | undefined),
      },
    })
  }

  proof (method: string, url: string, claims: JWTPayload = {}): Promise<string> {
    return dpopProof(this.key, method, url, claims)
  }
}
