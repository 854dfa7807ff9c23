/**
 * Rotating SESSION_SECRET without logging anybody out: prepend a new secret,
 * restart, and every session keeps working — re-sealed under the new secret
 * on first use — until the old secret is finally removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn } from '../helpers/sign-in.js'
import { TEST_SESSION_SECRET } from '../helpers/gateway.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'

const NEW_SECRET = 'rotated-session-secret-0123456789-abcdefghij'

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

/** Whether the session's record needs re-sealing under the new secret (sealed under another). */
const staleUnderNewSecret = async () => {
  const [key] = await redis.keys('bff:{s:*}')
  return createSessionCrypto([NEW_SECRET]).isStale((await redis.hgetBuffer(key!, 'sealed'))!)
}

describe('SESSION_SECRET rotation', () => {
  it('keeps sessions alive across a rotation and re-seals them under the new secret; dropping the old secret ends them', async () => {
    const user = await signIn(stack.publicUrl)
    const request = () => fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie, 'user-agent': user.userAgent } })
    expect(await staleUnderNewSecret()).toBe(true)

    await stack.gateways[0]!.close()
    await stack.restartGateway(0, { SESSION_SECRET: `${NEW_SECRET},${TEST_SESSION_SECRET}` })
    expect((await request()).status).toBe(200)
    expect(await staleUnderNewSecret()).toBe(false)

    // The cookie is still signed with the old secret: retiring it before the cookies age out signs users out.
    await stack.gateways[0]!.close()
    await stack.restartGateway(0, { SESSION_SECRET: NEW_SECRET })
    expect((await request()).status).toBe(401)
  })
})
