/**
 * A native app's session as it arrives: `Authorization: Session <credential>`
 * (the same opaque value a browser keeps in its cookie) with a DPoP proof of
 * this request by the key the session is bound to.
 *
 * The two carriers never mix: a device-bound session is refused from a cookie
 * (the session plugin sees to that), and a browser's session is refused from
 * the header, where it would escape the cookie's CSRF defences.
 */
import type { DpopProofChecker, ProvedRequest } from './dpop-proof.js'
import { isDeviceBound, type ActiveSession } from './active-session.js'
import type { SessionAccess } from './sessions.js'

const SCHEME = 'session '

/** The credential of `Authorization: Session <credential>` (scheme in any case), or undefined for any other header. */
export function sessionCredentialOf (authorization: string): string | undefined {
  if (authorization.length <= SCHEME.length || authorization.slice(0, SCHEME.length).toLowerCase() !== SCHEME) return undefined
  return authorization.slice(SCHEME.length).trim()
}

export interface NativeRequest extends ProvedRequest {
  /** The request's `DPoP` header(s). */
  proof: string | string[] | undefined
}

export interface NativeSessionReaderOptions {
  sessions: Pick<SessionAccess, 'load'>
  proofs: DpopProofChecker
}

/**
 * Reads the session a native credential names: undefined when there is none (or it is a
 * browser's), the session once the request's proof is by its key.
 * @throws InvalidDpopProof when the proof is missing, invalid, replayed or by another key
 */
export type NativeSessionReader = (credential: string, request: NativeRequest) => Promise<ActiveSession | undefined>

export function createNativeSessionReader (options: NativeSessionReaderOptions): NativeSessionReader {
  const { sessions, proofs } = options
  return async (credential, request) => {
    const session = await sessions.load(credential)
    if (!session || !isDeviceBound(session)) return undefined
    await proofs.check(request.proof, request, session.meta.dpopJkt)
    return session
  }
}
