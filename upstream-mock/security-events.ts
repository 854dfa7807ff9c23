/**
 * A Shared Signals transmitter (OpenID SSF 1.0, push delivery per RFC 8935):
 * Security Event Tokens (RFC 8417) signed with the IdP's key (`typ:
 * secevent+jwt`) and POSTed to a receiver. Options forge the bad ones a
 * receiver must refuse: another key, another issuer, `alg: none`, an old
 * `iat`, a replayed `jti`.
 */
import { randomUUID } from 'node:crypto'
import { SignJWT, base64url } from 'jose'
import type { CryptoKey } from 'jose'

/** CAEP event types (OpenID Continuous Access Evaluation Profile 1.0). */
export const CAEP_EVENTS = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  tokenClaimsChange: 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change',
  assuranceLevelChange: 'https://schemas.openid.net/secevent/caep/event-type/assurance-level-change',
} as const

/** RISC event types (OpenID RISC Profile 1.0). */
export const RISC_EVENTS = {
  accountDisabled: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
  accountEnabled: 'https://schemas.openid.net/secevent/risc/event-type/account-enabled',
  accountPurged: 'https://schemas.openid.net/secevent/risc/event-type/account-purged',
  credentialCompromise: 'https://schemas.openid.net/secevent/risc/event-type/credential-compromise',
} as const

export interface IssSubSubject {
  format: 'iss_sub'
  iss: string
  sub: string
}

export interface OpaqueSubject {
  format: 'opaque'
  id: string
}

/** One IdP session of one user. */
export interface ComplexSubject {
  format: 'complex'
  user?: IssSubSubject
  session?: OpaqueSubject
}

/** A subject identifier (RFC 9493); any other shape passes through as given, for malformed ones. */
export type SubjectIdentifier = IssSubSubject | ComplexSubject | OpaqueSubject | Record<string, unknown>

/** The user `sub` of `issuer`; with `sid`, only that IdP session of theirs. */
export function subjectIdentifier (issuer: string, sub: string, sid?: string): IssSubSubject | ComplexSubject {
  const user: IssSubSubject = { format: 'iss_sub', iss: issuer, sub }
  return sid === undefined ? user : { format: 'complex', user, session: { format: 'opaque', id: sid } }
}

export interface SecurityEventOptions {
  /** `aud` of the SET: the receiver's audience (the gateway's SSF_AUDIENCE). */
  audience: string | string[]
  /** Event type URI → its members, e.g. `{ [CAEP_EVENTS.sessionRevoked]: { event_timestamp: 1767225600 } }`. */
  events: Record<string, Record<string, unknown>>
  /** Omit for a SET without a subject. */
  subject?: SubjectIdentifier
  /** `sub_id` (SSF 1.0, default): the SET's `sub_id` claim; `event`: a `subject` member in each event (earlier drafts). */
  subjectIn?: 'sub_id' | 'event'
  /** Seconds since the epoch; default now. An old one makes a stale SET. */
  iat?: number
  /** Default a fresh UUID; send one twice to replay it. */
  jti?: string
  /** Default the IdP's issuer identifier. */
  issuer?: string
  /** `none` sends an unsecured SET (no signature). Default RS256 with the IdP's key. */
  alg?: 'RS256' | 'none'
  /** Signs with a key of nobody's under the IdP's `kid`: the signature does not verify. */
  foreignKey?: boolean
  /** JOSE header `typ`; default secevent+jwt. */
  typ?: string
  /** Claims added to (or replacing) the ones above. */
  claims?: Record<string, unknown>
}

export interface PushSecurityEventOptions extends SecurityEventOptions {
  /** The receiver's push endpoint, e.g. the gateway's /bff/ssf/events. */
  receiverUrl: string
  /** Sent as `Authorization: Bearer <pushToken>`. */
  pushToken?: string
  /** Default application/secevent+jwt. */
  contentType?: string
  /** Default 5000. */
  timeoutMs?: number
}

export interface SignedSecurityEvent {
  /** The SET as sent (compact JWS, or an unsecured JWT with `alg: none`). */
  set: string
  jti: string
  header: Record<string, unknown>
  claims: Record<string, unknown>
}

export interface SecurityEventDelivery extends SignedSecurityEvent {
  /** The receiver's HTTP status (RFC 8935: 202 accepted, 400 with `{ err, description }`). */
  status: number
  /** The receiver's body, as text. */
  body: string
  /** The body parsed, when it was JSON. */
  json?: unknown
}

/** Who signs: the IdP's issuer and key. */
export interface SecurityEventSigner {
  issuer: string
  kid: string
  alg: string
  privateKey (): Promise<CryptoKey>
  /** A private key for `alg` that matches no published key. */
  foreignKey (): Promise<CryptoKey>
}

function eventsWithSubject (options: SecurityEventOptions): Record<string, Record<string, unknown>> {
  if (options.subjectIn !== 'event' || options.subject === undefined) return options.events
  const { subject } = options
  return Object.fromEntries(Object.entries(options.events).map(([type, members]) => [type, { subject, ...members }]))
}

export async function signSecurityEvent (signer: SecurityEventSigner, options: SecurityEventOptions): Promise<SignedSecurityEvent> {
  const jti = options.jti ?? randomUUID()
  const claims: Record<string, unknown> = {
    iss: options.issuer ?? signer.issuer,
    jti,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    aud: options.audience,
    ...(options.subject !== undefined && options.subjectIn !== 'event' ? { sub_id: options.subject } : {}),
    events: eventsWithSubject(options),
    ...options.claims,
  }
  const typ = options.typ ?? 'secevent+jwt'
  if (options.alg === 'none') {
    const header = { alg: 'none', typ }
    const encode = (value: unknown) => base64url.encode(JSON.stringify(value))
    return { set: `${encode(header)}.${encode(claims)}.`, jti, header, claims }
  }
  const header = { alg: signer.alg, kid: signer.kid, typ }
  const key = await (options.foreignKey ? signer.foreignKey() : signer.privateKey())
  const set = await new SignJWT(claims).setProtectedHeader(header).sign(key)
  return { set, jti, header, claims }
}

export async function pushSecurityEvent (signer: SecurityEventSigner, options: PushSecurityEventOptions): Promise<SecurityEventDelivery> {
  const signed = await signSecurityEvent(signer, options)
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? 'application/secevent+jwt',
    accept: 'application/json',
  }
  if (options.pushToken !== undefined) headers.authorization = `Bearer ${options.pushToken}`
  const response = await fetch(options.receiverUrl, {
    method: 'POST',
    headers,
    body: signed.set,
    signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
  })
  const body = await response.text()
  let json: unknown
  try {
    json = body ? JSON.parse(body) : undefined
  } catch {
    json = undefined
  }
  return { ...signed, status: response.status, body, ...(json !== undefined ? { json } : {}) }
}
