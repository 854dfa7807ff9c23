/**
 * What a session costs Redis: a real signed-in session (access, refresh and
 * ID tokens from the real IdP, encrypted) measured with MEMORY USAGE.
 * A size budget, not a timing: the target is ≤ 4 KB per session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn } from '../helpers/sign-in.js'

let stack: Stack
let redis: Redis
beforeAll(async () => {
  stack = await startStack()
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

describe('memory per session in Redis', () => {
  it('stays within 4 KB for a session holding access, refresh and ID tokens', async () => {
    await signIn(stack.publicUrl)
    const [sessionKey] = await redis.keys('bff:{s:*}')
    const sessionBytes = Number(await redis.memory('USAGE', sessionKey!, 'SAMPLES', '0'))
    const indexBytes = Number(await redis.memory('USAGE', 'bff:{u:alice}:sessions', 'SAMPLES', '0'))
    const sealedBytes = (await redis.hget(sessionKey!, 'sealed'))!.length
    process.stdout.write(`session hash ${sessionBytes} B (sealed field ${sealedBytes} B), user index ${indexBytes} B\n`)
    expect(sealedBytes).toBeGreaterThan(1000)
    expect(sessionBytes).toBeLessThanOrEqual(4096)
  })
})
