/**
 * DPoP proofs (RFC 9449) that native apps send with every request: a JWT
 * signed by a key that never leaves the device, naming the request it is for.
 * The gateway binds a native session to the key's thumbprint (RFC 7638) and
 * accepts the session only with a fresh proof by that key for this very
 * request, so a copied credential is worth nothing without the device.
 *
 * One check per function, run in order by `verifyDpopProof` (pure: the caller
 * gives the time); `createDpopProofChecker` adds what needs shared state, the
 * refusal of a proof seen before on any instance.
 */
import { calculateJwkThumbprint, EmbeddedJWK, errors as joseErrors, jwtVerify, type JWK, type JWTPayload } from 'jose'
import { InvalidDpopProof } from '../errors.js'
import { keyFor } from './keys.js'
import type { ReplayClaims } from './store.js'

/** How far a proof's `iat` may be from the gateway's clock, either way (the contract's ±60 s). */
export const DPOP_PROOF_WINDOW_SECONDS = 60

// Asymmetric only: a symmetric key in a public header would prove nothing. jose refuses RSA keys under 2048 bits.
const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512']

// Far more than any real proof (an EC P-256 proof is about 500 characters; RSA 4096 under 2000).
const MAX_PROOF_LENGTH = 8192
const MAX_JTI_LENGTH = 256

/** What a proof's request was, as the gateway received it. */
export interface ProvedRequest {
  method: string
  /** The request target as received (path and query); the query is not part of what is proved. */
  url: string
}

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key, base64url: what a session is bound to. */
  jkt: string
  jti: string
  /** Seconds since the epoch. */
  iat: number
}

export interface ExpectedProof {
  method: string
  /** The absolute URL of the request without query or fragment: PUBLIC_URL plus the path. */
  htu: string
  /** The gateway's clock, epoch milliseconds. */
  now: number
}

/** The `htu` a request must be proved with: PUBLIC_URL plus its path as received, no query. */
export function htuOf (publicUrl: string, requestUrl: string): string {
  const queryAt = requestUrl.indexOf('?')
  return withoutQuery(new URL(queryAt === -1 ? requestUrl : requestUrl.slice(0, queryAt), publicUrl))
}

// RFC 9449 §4.3: compared without query and fragment, after the URL parser's own normalisation.
function withoutQuery (url: URL): string {
  return `${url.origin}${url.pathname}`
}

function theProof (header: string | string[] | undefined): string {
  if (header === undefined) throw new InvalidDpopProof('A DPoP proof is required')
  if (typeof header !== 'string') throw new InvalidDpopProof('Send exactly one DPoP header')
  if (header.length > MAX_PROOF_LENGTH) throw new InvalidDpopProof('The DPoP proof is too long')
  return header
}

async function signature (proof: string, now: number) {
  try {
    // jose checks the signature with the header's own key (public, asymmetric, of the named alg),
    // the `typ`, and `exp`/`nbf` when a proof carries them.
    return await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ALGORITHMS, currentDate: new Date(now) })
  } catch (error) {
    if (error instanceof joseErrors.JOSEError) throw new InvalidDpopProof(`The DPoP proof is not valid: ${error.code}`, { cause: error })
    throw error
  }
}

function method (payload: JWTPayload, expected: string): void {
  if (payload.htm !== expected) throw new InvalidDpopProof('The DPoP proof is for another method (htm)')
}

function url (payload: JWTPayload, expected: string): void {
  let proved: string | undefined
  try {
    proved = typeof payload.htu === 'string' ? withoutQuery(new URL(payload.htu)) : undefined
  } catch {
    proved = undefined
  }
  if (proved !== expected) throw new InvalidDpopProof('The DPoP proof is for another URL (htu)')
}

function issuedAt (payload: JWTPayload, now: number): number {
  const { iat } = payload
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new InvalidDpopProof('The DPoP proof has no iat')
  if (Math.abs(now / 1000 - iat) > DPOP_PROOF_WINDOW_SECONDS) {
    throw new InvalidDpopProof(`The DPoP proof's iat is more than ${DPOP_PROOF_WINDOW_SECONDS} s from the gateway's clock`)
  }
  return iat
}

function uniqueId (payload: JWTPayload): string {
  const { jti } = payload
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    throw new InvalidDpopProof(`The DPoP proof needs a jti of 1 to ${MAX_JTI_LENGTH} characters`)
  }
  return jti
}

/**
 * Checks everything about a proof that needs no shared state: signature by the embedded public
 * key, `typ`, `alg`, `htm`, `htu`, `iat` and the presence of a `jti`.
 * @throws InvalidDpopProof naming the check that failed
 */
export async function verifyDpopProof (header: string | string[] | undefined, expected: ExpectedProof): Promise<VerifiedProof> {
  const { payload, protectedHeader } = await signature(theProof(header), expected.now)
  method(payload, expected.method)
  url(payload, expected.htu)
  const iat = issuedAt(payload, expected.now)
  const jti = uniqueId(payload)
  return { jkt: await calculateJwkThumbprint(protectedHeader.jwk as JWK, 'sha256'), jti, iat }
}

export interface DpopProofCheckerOptions {
  publicUrl: string
  replayClaims: ReplayClaims
  now?: () => number
}

export interface DpopProofChecker {
  /**
   * Verifies the proof for this request and claims its `jti` on every instance; with `boundTo`,
   * the proof's key must have that thumbprint. Resolves with the key's thumbprint.
   * @throws InvalidDpopProof (missing, invalid, for another request, too old or new, replayed, another key)
   */
  check (header: string | string[] | undefined, request: ProvedRequest, boundTo?: string): Promise<string>
}

export function createDpopProofChecker (options: DpopProofCheckerOptions): DpopProofChecker {
  const now = options.now ?? Date.now
  // A proof stays acceptable while its iat is within the window of the clock: remember its jti that long.
  const replayWindowMs = (2 * DPOP_PROOF_WINDOW_SECONDS + 1) * 1000
  return {
    async check (header, request, boundTo) {
      const proof = await verifyDpopProof(header, { method: request.method, htu: htuOf(options.publicUrl, request.url), now: now() })
      if (boundTo !== undefined && proof.jkt !== boundTo) throw new InvalidDpopProof('The DPoP proof is signed by another key than the session is bound to')
      // Scoped by key: one app cannot spend another's jti values.
      if (!(await options.replayClaims.claimOnce(keyFor.dpopProofId(proof.jkt, proof.jti), replayWindowMs))) {
        throw new InvalidDpopProof('The DPoP proof was used before')
      }
      return proof.jkt
    },
  }
}
