/**
 * The start-up check's list of commands against what the gateway sends: every
 * command inside the store's Lua scripts (Redis checks those against the
 * caller's rights too) must be on it, or a user without one would pass the
 * check and fail on the first login.
 */
import { describe, expect, it } from 'vitest'
import { STORE_SCRIPTS } from '../../gateway/session/redis-store.js'
import { REQUIRED_COMMANDS } from '../../gateway/session/redis-start-check.js'

const checked = new Set(REQUIRED_COMMANDS.map(use => use.command[0]))

describe('REQUIRED_COMMANDS', () => {
  it.each(Object.entries(STORE_SCRIPTS))('holds every command the %s script calls', (_name, lua) => {
    const called = [...lua.matchAll(/redis\.p?call\('(\w+)'/g)].map(match => match[1]!.toUpperCase())
    expect(called.length).toBeGreaterThan(0)
    for (const command of called) expect(checked, command).toContain(command)
  })

  it('holds the script commands themselves and those of @fastify/rate-limit\'s script', () => {
    for (const command of ['EVALSHA', 'EVAL', 'INCR', 'PEXPIRE', 'PTTL', 'GET']) expect(checked, command).toContain(command)
  })
})
