/**
 * The native half of the contract in miniature, for the native client's unit
 * tests: the system-browser login (`/bff/login?client=native…` → redirect
 * with a handoff code), `POST /bff/native/session` (code + PKCE verifier +
 * DPoP proof → a credential bound to the proof's key), and every later call
 * checked for `Authorization: Session …` and a DPoP proof of that same key,
 * verified with jose as a server would.
 */
import { createHash, randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose'
import type { OpenAuthSession } from '../../src/native.js'
import { fakeFetch, json, problem, type FakeFetch, type Handler, type RecordedRequest } from './fake-fetch.js'
import { userNamed } from './browser-gateway.js'

export const NATIVE_ORIGIN = 'https://app.example.com'
export const REDIRECT_URI = 'com.example.app:/oauth/callback'

export interface VerifiedProof {
  header: { typ?: string, alg?: string, jwk?: JWK }
  claims: Record<string, unknown>
  thumbprint: string
}

export interface NativeGatewayState {
  /** Every `/bff/login` URL the system browser was asked to open. */
  logins: URL[]
  /** How the system browser ends a login: by default it signs the user in and redirects with a code. */
  browser: (login: URL, redirectUri: string) => ReturnType<OpenAuthSession>
  /** Answers for `METHOD /path` to a valid native session, taking precedence over the defaults. */
  answers: Map<string, Handler>
  /** Every proof the gateway accepted, in order. */
  proofs: VerifiedProof[]
  /** Live credentials → the key thumbprint they are bound to. */
  sessions: Map<string, string>
}

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url')

export function nativeGateway (): FakeFetch & { state: NativeGatewayState, openAuthSession: OpenAuthSession } {
  const codes = new Map<string, string>() // handoff code → code_challenge
  const seenJti = new Set<string>()
  const state: NativeGatewayState = {
    logins: [],
    answers: new Map(),
    proofs: [],
    sessions: new Map(),
    browser: (login, redirectUri) => {
      const code = randomBytes(16).toString('base64url')
      codes.set(code, login.searchParams.get('code_challenge')!)
      return Promise.resolve(`${redirectUri}?code=${code}&state=${encodeURIComponent(login.searchParams.get('state')!)}`)
    },
  }

  async function verifyProof (request: RecordedRequest): Promise<VerifiedProof | undefined> {
    const proof = request.headers.get('dpop')
    if (!proof) return undefined
    try {
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })
      const fresh = typeof payload.iat === 'number' && Math.abs(payload.iat - Date.now() / 1000) <= 60
      const htu = NATIVE_ORIGIN + request.url.pathname
      if (payload.htm !== request.method || payload.htu !== htu || !fresh || typeof payload.jti !== 'string' || seenJti.has(payload.jti)) return undefined
      seenJti.add(payload.jti)
      const verified = { header: protectedHeader as VerifiedProof['header'], claims: payload, thumbprint: await calculateJwkThumbprint(protectedHeader.jwk!) }
      state.proofs.push(verified)
      return verified
    } catch {
      return undefined
    }
  }

  const fake = fakeFetch(async (request) => {
    const key = `${request.method} ${request.url.pathname}`
    if (key === 'POST /bff/native/session') {
      const proof = await verifyProof(request)
      if (!proof) return problem(401, 'invalid_dpop_proof')
      const body = JSON.parse(request.body ?? '{}') as { code?: string, code_verifier?: string }
      const challenge = codes.get(body.code ?? '')
      codes.delete(body.code ?? '')
      if (!challenge || s256(body.code_verifier ?? '') !== challenge) return problem(400, 'invalid_grant')
      const session = randomBytes(32).toString('base64url')
      state.sessions.set(session, proof.thumbprint)
      return json(200, { session, expiresAt: '2030-01-01T12:00:00.000Z', idleExpiresAt: '2030-01-01T00:30:00.000Z' })
    }
    const authorization = request.headers.get('authorization') ?? ''
    const bound = state.sessions.get(authorization.replace(/^Session /, ''))
    if (!authorization.startsWith('Session ') || bound === undefined) return problem(401, 'unauthenticated')
    const proof = await verifyProof(request)
    if (!proof || proof.thumbprint !== bound) return problem(401, 'invalid_dpop_proof')
    const scripted = state.answers.get(key)
    if (scripted) return scripted(request)
    if (key === 'GET /bff/user') {
      const { csrfToken: _browserOnly, ...user } = userNamed('alice', '')
      return json(200, user)
    }
    if (key === 'POST /bff/logout') {
      state.sessions.delete(authorization.replace(/^Session /, ''))
      return json(200, { logoutUrl: 'https://idp.example.com/session/end' })
    }
    return json(200, { ok: true, path: request.url.pathname })
  })

  const openAuthSession: OpenAuthSession = (url, redirectUri) => {
    const login = new URL(url)
    state.logins.push(login)
    return state.browser(login, redirectUri)
  }
  return { ...fake, state, openAuthSession }
}
