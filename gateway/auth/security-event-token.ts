/**
 * Verification of Security Event Tokens (RFC 8417) pushed by a Shared Signals
 * transmitter (OpenID SSF 1.0, RFC 8935 push delivery): one check per step,
 * each refusal carrying RFC 8935's error code; the events read out with their
 * subjects. No Fastify here.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'

/** RFC 8935 §2.3's codes for a SET the receiver refuses. */
export type SetRefusalCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience'

export class SecurityEventTokenError extends Error {
  readonly code: SetRefusalCode
  /** Says what was wrong, for the transmitter (never anything of ours). */
  readonly description: string
  constructor (code: SetRefusalCode, description: string, options?: { cause?: unknown }) {
    super(`security event token refused: ${code}: ${description}`, options)
    this.name = 'SecurityEventTokenError'
    this.code = code
    this.description = description
  }
}

/** The transmitter's keys could not be had: not the SET's fault, so not a refusal. */
export class KeySetUnavailableError extends Error {
  override name = 'KeySetUnavailableError'
}

/** The event types the gateway acts on (CAEP and RISC), by their short names. */
export const SECURITY_EVENT_TYPES = {
  'https://schemas.openid.net/secevent/caep/event-type/session-revoked': 'session-revoked',
  'https://schemas.openid.net/secevent/caep/event-type/credential-change': 'credential-change',
  'https://schemas.openid.net/secevent/caep/event-type/token-claims-change': 'token-claims-change',
  'https://schemas.openid.net/secevent/caep/event-type/assurance-level-change': 'assurance-level-change',
  'https://schemas.openid.net/secevent/risc/event-type/account-disabled': 'account-disabled',
  'https://schemas.openid.net/secevent/risc/event-type/account-enabled': 'account-enabled',
  'https://schemas.openid.net/secevent/risc/event-type/account-purged': 'account-purged',
} as const

export type SecurityEventType = typeof SECURITY_EVENT_TYPES[keyof typeof SECURITY_EVENT_TYPES]

/**
 * Whom an event is about: a user of the identity provider (`iss_sub` with its issuer), one IdP
 * session of a user (`complex` with an `opaque` session id, the IdP's `sid`), or someone the
 * gateway cannot name (another format, another issuer's subject).
 */
export type EventSubject =
  | { kind: 'user', sub: string }
  | { kind: 'session', sub: string, sid: string }
  | { kind: 'unsupported', format: string }

export interface SecurityEvent {
  /** `other` for an event type the gateway does not act on. */
  type: SecurityEventType | 'other'
  /** The event type's URI as sent. */
  uri: string
  subject: EventSubject
}

export interface VerifiedSecurityEventToken {
  jti: string
  events: SecurityEvent[]
}

export interface SetVerifierOptions {
  /** The transmitter's `iss`. */
  issuer: string
  /** The `aud` the SETs must carry: this gateway. */
  audience: string
  keys: () => Promise<JWTVerifyGetKey>
  /** The issuer of the subs the gateway's sessions carry (OIDC_ISSUER): `iss_sub` subjects must name it. */
  subjectIssuer: string
  /** True the first time this issuer's `jti` is seen (shared by all instances). */
  claimJti: (jti: string, ttlMs: number) => Promise<boolean>
  /** Oldest `iat` accepted, in seconds; default 300. */
  maxAgeSeconds?: number
  /** Leeway for a transmitter's clock, in seconds; default 30. */
  clockToleranceSeconds?: number
}

export type SetVerifier = (token: string) => Promise<VerifiedSecurityEventToken>

/** Signatures only, never `none` and never a shared secret: the transmitter signs with a key pair. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
const MAX_TOKEN_LENGTH = 32_768
const MAX_ID_LENGTH = 1024
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value)

const identifier = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' && value.length <= MAX_ID_LENGTH ? value : undefined

function checkType (token: string): void {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !JWS_COMPACT.test(token)) {
    throw new SecurityEventTokenError('invalid_request', 'the body is not a signed JWT in compact form')
  }
  let header
  try {
    header = decodeProtectedHeader(token)
  } catch (error) {
    throw new SecurityEventTokenError('invalid_request', 'the JWT header cannot be read', { cause: error })
  }
  // SSF 1.0 and RFC 8417 §2.3: a SET says it is one; where it says anything, it must say that.
  const { typ } = header
  if (typ !== undefined && (typeof typ !== 'string' || !['secevent+jwt', 'application/secevent+jwt'].includes(typ.toLowerCase()))) {
    throw new SecurityEventTokenError('invalid_request', 'the JWT is not a security event token (typ)')
  }
}

/** jose's verdicts, as RFC 8935 codes; anything else means the keys could not be had. */
function refusalOf (error: unknown): SecurityEventTokenError | KeySetUnavailableError {
  if (error instanceof errors.JWTClaimValidationFailed) {
    const code = error.claim === 'iss' ? 'invalid_issuer' : error.claim === 'aud' ? 'invalid_audience' : 'invalid_request'
    return new SecurityEventTokenError(code, error.message, { cause: error })
  }
  if (error instanceof errors.JWTExpired || error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return new SecurityEventTokenError('invalid_request', error.message, { cause: error })
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JOSEAlgNotAllowed ||
    error instanceof errors.JOSENotSupported || error instanceof errors.JWKInvalid) {
    return new SecurityEventTokenError('invalid_key', 'the signature or its key is not acceptable', { cause: error })
  }
  return new KeySetUnavailableError('the transmitter\'s keys could not be fetched', { cause: error })
}

/** An `iss_sub` subject (SSF 1.0 §3, RFC 9493), checked against the issuer whose subs we know. */
function userOf (subject: Record<string, unknown>, subjectIssuer: string): string | EventSubject {
  if (subject.format !== 'iss_sub') return { kind: 'unsupported', format: String(subject.format ?? 'none') }
  const sub = identifier(subject.sub)
  if (typeof subject.iss !== 'string' || sub === undefined) {
    throw new SecurityEventTokenError('invalid_request', 'an iss_sub subject needs iss and sub')
  }
  return subject.iss === subjectIssuer ? sub : { kind: 'unsupported', format: 'iss_sub of another issuer' }
}

function subjectOf (subject: unknown, subjectIssuer: string): EventSubject {
  if (!isObject(subject) || typeof subject.format !== 'string') {
    throw new SecurityEventTokenError('invalid_request', 'the event has no subject (sub_id, or the event\'s subject)')
  }
  if (subject.format !== 'complex') {
    const user = userOf(subject, subjectIssuer)
    return typeof user === 'string' ? { kind: 'user', sub: user } : user
  }
  if (!isObject(subject.user)) return { kind: 'unsupported', format: 'complex without a user' }
  const user = userOf(subject.user, subjectIssuer)
  if (typeof user !== 'string') return user
  if (subject.session === undefined) return { kind: 'user', sub: user }
  if (!isObject(subject.session) || subject.session.format !== 'opaque') return { kind: 'unsupported', format: 'complex with a session that is not opaque' }
  const sid = identifier(subject.session.id)
  if (sid === undefined) throw new SecurityEventTokenError('invalid_request', 'an opaque session subject needs an id')
  return { kind: 'session', sub: user, sid }
}

function eventsOf (payload: JWTPayload, subjectIssuer: string): SecurityEvent[] {
  const { events } = payload
  if (!isObject(events) || Object.keys(events).length === 0) {
    throw new SecurityEventTokenError('invalid_request', 'the SET carries no events')
  }
  return Object.entries(events).map(([uri, event]) => {
    if (!isObject(event)) throw new SecurityEventTokenError('invalid_request', 'an event\'s payload must be a JSON object')
    // SSF 1.0 puts the subject beside the events (sub_id); earlier drafts inside each event.
    const subject = payload.sub_id !== undefined ? payload.sub_id : event.subject
    const type = (SECURITY_EVENT_TYPES as Record<string, SecurityEventType>)[uri] ?? 'other'
    return { type, uri, subject: subjectOf(subject, subjectIssuer) }
  })
}

export function createSetVerifier (options: SetVerifierOptions): SetVerifier {
  const maxAge = options.maxAgeSeconds ?? 300
  const tolerance = options.clockToleranceSeconds ?? 30

  return async (token) => {
    checkType(token)
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, await options.keys(), {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ALGORITHMS,
        maxTokenAge: maxAge,
        clockTolerance: tolerance,
        requiredClaims: ['iat', 'jti'],
      }))
    } catch (error) {
      throw refusalOf(error)
    }
    const jti = identifier(payload.jti)
    if (jti === undefined) throw new SecurityEventTokenError('invalid_request', 'the jti must be a non-empty string')
    const events = eventsOf(payload, options.subjectIssuer)
    // Claimed last, so a SET refused for anything else does not use up its jti.
    if (!(await options.claimJti(jti, (maxAge + tolerance) * 1000))) {
      throw new SecurityEventTokenError('invalid_request', 'this jti was seen before (replayed)')
    }
    return { jti, events }
  }
}
