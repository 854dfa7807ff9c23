import { describe, expect, it } from 'vitest'
import { bindingMismatch, KEPT_USER_AGENT_CHARS } from '../../gateway/session/session-binding.js'

const created = { ip: '203.0.113.10', userAgent: 'Mozilla/5.0 (X11) Chrome/150' }

describe('session binding', () => {
  it.each([
    ['the same client', { ip: '203.0.113.10', userAgent: created.userAgent }, {}, undefined],
    ['another User-Agent', { ip: '203.0.113.10', userAgent: 'curl/8' }, {}, 'user_agent'],
    ['another address, networks not compared', { ip: '198.51.100.7', userAgent: created.userAgent }, {}, undefined],
    ['another address in the same /24', { ip: '203.0.113.99', userAgent: created.userAgent }, { ipv4Prefix: 24 }, undefined],
    ['another /24', { ip: '203.0.114.10', userAgent: created.userAgent }, { ipv4Prefix: 24 }, 'network'],
    ['the same address, exact match required', { ip: '203.0.113.10', userAgent: created.userAgent }, { ipv4Prefix: 32 }, undefined],
    ['an IPv4-mapped IPv6 form of the same address', { ip: '::ffff:203.0.113.10', userAgent: created.userAgent }, { ipv4Prefix: 32 }, undefined],
    ['an IPv6 address when networks are compared', { ip: '2001:db8::1', userAgent: created.userAgent }, { ipv4Prefix: 24 }, 'network'],
  ] as const)('%s', (_case, client, rules, expected) => {
    expect(bindingMismatch(created, client, rules)).toBe(expected)
  })

  it('compares IPv6 clients on their prefix', () => {
    const v6 = { ip: '2001:db8:1:2::5', userAgent: 'ua' }
    expect(bindingMismatch(v6, { ip: '2001:db8:1:2::99', userAgent: 'ua' }, { ipv6Prefix: 64 })).toBeUndefined()
    expect(bindingMismatch(v6, { ip: '2001:db8:1:3::5', userAgent: 'ua' }, { ipv6Prefix: 64 })).toBe('network')
  })

  it('compares User-Agents on the part a session keeps, also for sessions that kept more', () => {
    const long = `Mozilla/5.0 ${'x'.repeat(KEPT_USER_AGENT_CHARS)}`
    const kept = long.slice(0, KEPT_USER_AGENT_CHARS)
    expect(bindingMismatch({ ip: created.ip, userAgent: kept }, { ip: created.ip, userAgent: long }, {})).toBeUndefined()
    expect(bindingMismatch({ ip: created.ip, userAgent: long }, { ip: created.ip, userAgent: long }, {})).toBeUndefined()
    expect(bindingMismatch({ ip: created.ip, userAgent: kept }, { ip: created.ip, userAgent: `curl/8 ${'x'.repeat(KEPT_USER_AGENT_CHARS)}` }, {})).toBe('user_agent')
  })
})
