/**
 * Audit events: one structured log line per security-relevant event, and a
 * metric by event and reason. Callers pass who and why, never a token or a
 * session id (sessions are named by their public handle).
 *
 * Some of what callers pass was written by whoever sent the request (a
 * callback's `error`, a client address taken from X-Forwarded-For), so both
 * outputs are bounded here, whatever the caller: the metric's labels come from
 * closed sets (every new label value is a series kept for the life of the
 * process), and every text field of the line is cut short and has its
 * unprintable characters escaped.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayMetrics } from './metrics.js'
import { OAUTH_ERROR_CODES, type OAuthErrorCode } from '../oauth-error-codes.js'

const AUDIT_EVENTS = [
  'login',
  'login_failed',
  'logout',
  'refresh_failed',
  'session_revoked',
  'csrf_refused',
  'theft_suspected',
  'binding_mismatch',
  'account_status_changed',
  'refresh_requested',
  'acr_forgotten',
  'security_event',
  'security_event_refused',
  'upstream_token_failed',
  'route_policy_reload',
] as const

export type AuditEvent = typeof AUDIT_EVENTS[number]

/** The gateway's own reasons, by the events that give them; with the registered OAuth error codes, the whole set. */
const GATEWAY_REASONS = [
  // login_failed (and the OAuth codes a silent login ends with)
  'invalid_state', 'invalid_response', 'account_disabled',
  // logout and session_revoked, the store's revocation reasons among them
  'user', 'user_others', 'operator', 'backchannel', 'backchannel_refused', 'binding', 'theft_suspected', 'epoch',
  'security_event',
  // account_status_changed, refresh_requested, acr_forgotten: who asked ('operator', 'security_event')
  // security_event: the Shared Signals event types handled (CAEP, RISC)
  'session-revoked', 'credential-change', 'token-claims-change', 'assurance-level-change',
  'account-disabled', 'account-enabled', 'account-purged',
  // security_event_refused: RFC 8935's error codes (invalid_request is among the OAuth codes), and a missing push token
  'invalid_key', 'invalid_issuer', 'invalid_audience', 'authentication_failed',
  // theft_suspected
  'refresh_token_rejected',
  // csrf_refused
  'cross_site', 'origin', 'token',
  // binding_mismatch
  'user_agent', 'network',
  // upstream_token_failed (with the IdP's OAuth error codes): the session's grant lacks the audience
  'not_granted',
  // route_policy_reload: what became of the re-read policy
  'applied', 'unchanged', 'refused',
  // whatever else an identity provider, or someone posing as one, called an error
  'other',
] as const

/** An audit event's reason: the type keeps callers to the set, and `createAudit` checks it again at run time. */
export type AuditReason = typeof GATEWAY_REASONS[number] | OAuthErrorCode

export interface AuditFields {
  reason?: AuditReason
  sub?: string
  session?: string
  ip?: string
  [field: string]: string | number | boolean | undefined
}

export type Audit = (event: AuditEvent, fields?: AuditFields) => void

/** Long enough for any OIDC `sub` (at most 255 ASCII characters, Core §2), the longest thing a field is meant to hold. */
export const MAX_AUDIT_FIELD_LENGTH = 256

// Controls (C0, DEL, C1), invisible format characters (zero-width, bidi overrides), lone
// surrogates (a cut may split a pair) and the line and paragraph separators.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/gu

const escaped = (char: string) => {
  const hex = (char.codePointAt(0) ?? 0).toString(16)
  return hex.length <= 4 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`
}

/** A text field as the audit line carries it: its first MAX_AUDIT_FIELD_LENGTH characters, unprintable ones escaped as `\uXXXX`. */
export function auditText (value: string): string {
  const cut = value.length > MAX_AUDIT_FIELD_LENGTH ? `${value.slice(0, MAX_AUDIT_FIELD_LENGTH)}…` : value
  return cut.replace(UNPRINTABLE, escaped)
}

const EVENTS: ReadonlySet<string> = new Set(AUDIT_EVENTS)
const REASONS: ReadonlySet<string> = new Set([...GATEWAY_REASONS, ...OAUTH_ERROR_CODES])

export function createAudit (log: FastifyBaseLogger, metrics: GatewayMetrics): Audit {
  const warnings = new Set<AuditEvent>(['theft_suspected', 'binding_mismatch', 'csrf_refused', 'login_failed', 'security_event_refused', 'upstream_token_failed'])
  return (event, fields = {}) => {
    const { reason } = fields
    metrics.auditEvents.inc({
      event: EVENTS.has(event) ? event : 'other',
      reason: reason === undefined ? '' : REASONS.has(reason) ? reason : 'other',
    })
    const line: Record<string, unknown> = { audit: event }
    for (const [name, value] of Object.entries(fields)) line[name] = typeof value === 'string' ? auditText(value) : value
    if (warnings.has(event)) log.warn(line, `audit: ${event}`)
    else log.info(line, `audit: ${event}`)
  }
}
