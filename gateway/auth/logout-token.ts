/**
 * Verification of OpenID Connect Back-Channel Logout 1.0 logout tokens.
 * One check per step, each failing with a stable reason; no Fastify here.
 */
import { jwtVerify, decodeProtectedHeader, type JWTPayload } from 'jose'
import { remoteKeySet } from './remote-key-set.js'

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

export class LogoutTokenError extends Error {
  readonly reason: string
  constructor (reason: string, options?: { cause?: unknown }) {
    super(`invalid logout token: ${reason}`, options)
    this.name = 'LogoutTokenError'
    this.reason = reason
  }
}

export interface LogoutTokenClaims {
  sub?: string
  sid?: string
}

export interface LogoutTokenVerifierOptions {
  issuer: string
  clientId: string
  jwksUri: () => Promise<string>
  /** How old (by `iat`) a logout token may be. */
  maxAgeSeconds?: number
  clockToleranceSeconds?: number
  /** True the first time this issuer's `jti` is seen (replay protection, shared by all instances). */
  claimJti: (jti: string, ttlMs: number) => Promise<boolean>
}

export type LogoutTokenVerifier = (token: string) => Promise<LogoutTokenClaims>

function checkType (token: string): void {
  let typ: unknown
  try {
    typ = decodeProtectedHeader(token).typ
  } catch (error) {
    throw new LogoutTokenError('malformed', { cause: error })
  }
  // Spec: typ SHOULD be logout+jwt; where present, anything else (a JSON null or number too) is another kind of token.
  if (typ !== undefined && (typeof typ !== 'string' || !['logout+jwt', 'application/logout+jwt'].includes(typ.toLowerCase()))) {
    throw new LogoutTokenError('wrong_typ')
  }
}

function checkClaims (payload: JWTPayload): LogoutTokenClaims {
  const events = payload.events as Record<string, unknown> | undefined
  const event = events && typeof events === 'object' ? events[LOGOUT_EVENT] : undefined
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new LogoutTokenError('missing_event')
  if ('nonce' in payload) throw new LogoutTokenError('nonce_present')
  const sub = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined
  const sid = typeof payload.sid === 'string' && payload.sid !== '' ? payload.sid : undefined
  if (!sub && !sid) throw new LogoutTokenError('missing_sub_and_sid')
  if (typeof payload.jti !== 'string' || payload.jti === '') throw new LogoutTokenError('missing_jti')
  return { ...(sub ? { sub } : {}), ...(sid ? { sid } : {}) }
}

export function createLogoutTokenVerifier (options: LogoutTokenVerifierOptions): LogoutTokenVerifier {
  const maxAge = options.maxAgeSeconds ?? 120
  const tolerance = options.clockToleranceSeconds ?? 30
  const keySet = remoteKeySet(options.jwksUri)

  return async (token) => {
    if (typeof token !== 'string' || token.length === 0 || token.length > 16_384) throw new LogoutTokenError('missing')
    checkType(token)
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, await keySet(), {
        issuer: options.issuer,
        audience: options.clientId,
        maxTokenAge: maxAge,
        clockTolerance: tolerance,
        requiredClaims: ['iat'],
      }))
    } catch (error) {
      if (error instanceof LogoutTokenError) throw error
      const code = (error as { code?: string }).code ?? 'verification_failed'
      throw new LogoutTokenError(code.replace(/^ERR_/, '').toLowerCase(), { cause: error })
    }
    const claims = checkClaims(payload)
    const fresh = await options.claimJti(payload.jti as string, (maxAge + tolerance) * 1000)
    if (!fresh) throw new LogoutTokenError('replayed')
    return claims
  }
}
