/**
 * Audit events: one structured log line per security-relevant event, and a
 * metric by event and reason. Callers pass who and why, never a token or a
 * session id (sessions are named by their public handle).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayMetrics } from './metrics.js'

export type AuditEvent =
  | 'login'
  | 'login_failed'
  | 'logout'
  | 'refresh_failed'
  | 'session_revoked'
  | 'csrf_refused'
  | 'theft_suspected'
  | 'binding_mismatch'

export interface AuditFields {
  reason?: string
  sub?: string
  session?: string
  ip?: string
  [field: string]: string | number | boolean | undefined
}

export type Audit = (event: AuditEvent, fields?: AuditFields) => void

export function createAudit (log: FastifyBaseLogger, metrics: GatewayMetrics): Audit {
  const warnings = new Set<AuditEvent>(['theft_suspected', 'binding_mismatch', 'csrf_refused', 'login_failed'])
  return (event, fields = {}) => {
    metrics.auditEvents.inc({ event, reason: fields.reason ?? '' })
    const line = { audit: event, ...fields }
    if (warnings.has(event)) log.warn(line, `audit: ${event}`)
    else log.info(line, `audit: ${event}`)
  }
}
