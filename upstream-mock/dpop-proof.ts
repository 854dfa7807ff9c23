/**
 * A resource server's check of a DPoP proof (RFC 9449 section 4.3 and 7.1),
 * with jose: one `DPoP` header, `typ: dpop+jwt` signed by the public JWK in
 * its header, `htm` and `htu` of this request, `iat` within 60 s, `ath` the
 * hash of the access token, the token bound (`cnf.jkt`) to that very key, the
 * server's nonce when it demands one, and a `jti` never seen before.
 */
import { createHash } from 'node:crypto'
import { EmbeddedJWK, calculateJwkThumbprint, errors as joseErrors, jwtVerify } from 'jose'
import type { JWK, JWTPayload } from 'jose'

export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519']
/** How far `iat` may be from now, either way. */
export const DPOP_IAT_WINDOW_SECONDS = 60

export type DpopErrorCode = 'invalid_dpop_proof' | 'use_dpop_nonce'

export class DpopProofError extends Error {
  readonly code: DpopErrorCode
  constructor (code: DpopErrorCode, message: string) {
    super(message)
    this.name = 'DpopProofError'
    this.code = code
  }
}

/** `jti`s of accepted proofs, kept as long as their `iat` would still pass. */
export class DpopReplayCache {
  readonly #seen = new Map<string, number>()

  /** False when `jti` was seen; else remembers it. */
  remember (jti: string, now: number): boolean {
    for (const [seen, expiresAt] of this.#seen) if (expiresAt <= now) this.#seen.delete(seen)
    if (this.#seen.has(jti)) return false
    this.#seen.set(jti, now + 2 * DPOP_IAT_WINDOW_SECONDS)
    return true
  }
}

export interface DpopProofRequest {
  /** The `DPoP` request header as received (Node joins repeated ones with a comma). */
  proof: string | string[] | undefined
  method: string
  /** This resource's URL as the client addresses it: origin and path, no query. */
  url: string
  accessToken: string
  /** The verified access token's claims; its `cnf.jkt` must be the proof key's thumbprint. */
  tokenClaims: JWTPayload
  /** The nonce the server demands, if any. */
  nonce?: string
  replay: DpopReplayCache
}

const base64urlSha256 = (value: string) => createHash('sha256').update(value).digest('base64url')

function withoutQuery (value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const url = URL.parse(value)
  if (!url) return undefined
  url.search = ''
  url.hash = ''
  return url.href
}

const invalid = (message: string) => new DpopProofError('invalid_dpop_proof', message)

/** Resolves with the proof key's JWK thumbprint; rejects with a DpopProofError. */
export async function verifyDpopProof (request: DpopProofRequest): Promise<string> {
  const { proof } = request
  if (typeof proof !== 'string' || proof === '') throw invalid('missing DPoP proof')
  if (proof.includes(',')) throw invalid('more than one DPoP proof')

  let payload: JWTPayload
  let jwk: JWK | undefined
  try {
    const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGORITHMS })
    payload = verified.payload
    jwk = verified.protectedHeader.jwk
  } catch (error) {
    const reason = error instanceof joseErrors.JOSEError ? error.message : 'malformed'
    throw invalid(`DPoP proof does not verify: ${reason}`)
  }
  if (!jwk) throw invalid('DPoP proof has no jwk header')

  if (typeof payload.jti !== 'string' || payload.jti === '') throw invalid('DPoP proof has no jti')
  if (payload.htm !== request.method) throw invalid('DPoP proof htm mismatch')
  if (withoutQuery(payload.htu) !== withoutQuery(request.url)) throw invalid('DPoP proof htu mismatch')
  const now = Math.floor(Date.now() / 1000)
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > DPOP_IAT_WINDOW_SECONDS) {
    throw invalid('DPoP proof iat is not within 60 seconds of now')
  }
  if (payload.ath !== base64urlSha256(request.accessToken)) throw invalid('DPoP proof ath mismatch')

  const thumbprint = await calculateJwkThumbprint(jwk)
  const cnf = request.tokenClaims.cnf as { jkt?: unknown } | undefined
  if (cnf?.jkt !== thumbprint) throw invalid('the access token is not bound to the DPoP proof key')

  if (request.nonce !== undefined && payload.nonce !== request.nonce) {
    throw new DpopProofError('use_dpop_nonce', 'DPoP proof must carry the server\'s current nonce')
  }
  if (!request.replay.remember(payload.jti, now)) throw invalid('DPoP proof jti replayed')
  return thumbprint
}
