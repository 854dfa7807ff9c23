/**
 * The audit module bounds what it emits whatever its callers pass: metric
 * labels from closed sets, text fields of the line cut short and escaped.
 */
import type { FastifyBaseLogger } from 'fastify'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { auditText, createAudit, MAX_AUDIT_FIELD_LENGTH, type AuditReason } from '../../gateway/observability/audit.js'
import { createMetrics } from '../../gateway/observability/metrics.js'

function recordingLog () {
  const lines: Array<Record<string, unknown>> = []
  const write = (line: Record<string, unknown>) => { lines.push(line) }
  return { lines, log: { info: write, warn: write } as unknown as FastifyBaseLogger }
}

// Controls, format characters (bidi overrides, zero-width), lone surrogates and the Unicode line breaks.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/u

describe('auditText', () => {
  it('keeps an ordinary value as it is', () => {
    expect(auditText('alice@example.com')).toBe('alice@example.com')
    expect(auditText('x'.repeat(MAX_AUDIT_FIELD_LENGTH))).toBe('x'.repeat(MAX_AUDIT_FIELD_LENGTH))
  })

  it('escapes line breaks, NULs, bidi overrides and tag characters rather than dropping them', () => {
    expect(auditText('a\nb\r\0c\u2028d\u202ee\u{e0041}')).toBe('a\\u000ab\\u000d\\u0000c\\u2028d\\u202ee\\u{e0041}')
  })

  it('cuts a long value, without leaving half a surrogate pair', () => {
    const value = `${'x'.repeat(MAX_AUDIT_FIELD_LENGTH - 1)}😀tail`
    const text = auditText(value)
    expect(text.startsWith('x'.repeat(MAX_AUDIT_FIELD_LENGTH - 1))).toBe(true)
    expect(text).not.toContain('tail')
    expect(text).toMatch(/\\ud83d…$/)
  })

  it('is bounded and printable for any input', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (value) => {
      const text = auditText(value)
      expect(text.length).toBeLessThanOrEqual((MAX_AUDIT_FIELD_LENGTH + 1) * 10)
      expect(text).not.toMatch(UNPRINTABLE)
    }))
  })
})

describe('createAudit', () => {
  it('counts a reason outside the set as "other", however many different ones come', async () => {
    const metrics = createMetrics()
    const { lines, log } = recordingLog()
    const audit = createAudit(log, metrics)
    for (let i = 0; i < 50; i += 1) audit('login_failed', { reason: `made_up_${i}` as AuditReason })
    audit('login_failed', { reason: 'access_denied' })
    audit('login')
    const { values } = await metrics.auditEvents.get()
    expect(values.map(({ labels, value }) => [labels.event, labels.reason, value])).toEqual([
      ['login_failed', 'other', 50],
      ['login_failed', 'access_denied', 1],
      ['login', '', 1],
    ])
    expect(lines[0]).toMatchObject({ audit: 'login_failed', reason: 'made_up_0' })
  })

  it('writes every text field cut short and escaped, and other fields as they are', () => {
    const { lines, log } = recordingLog()
    const audit = createAudit(log, createMetrics())
    audit('login_failed', { reason: 'other', reportedError: `bad\n${'y'.repeat(10_000)}`, ip: '10.0.0.1', revoked: 3, stolen: false })
    const [line] = lines
    expect(line).toMatchObject({ audit: 'login_failed', ip: '10.0.0.1', revoked: 3, stolen: false })
    expect(line!.reportedError).toBe(auditText(`bad\n${'y'.repeat(10_000)}`))
    expect((line!.reportedError as string).startsWith('bad\\u000ayyy')).toBe(true)
  })
})
