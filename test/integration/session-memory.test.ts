/**
 * What a session costs Redis: a real session from the real IdP, holding its
 * own access and refresh tokens, two tokens narrowed to other APIs (one
 * DPoP-bound) and its DPoP key, measured with MEMORY USAGE. A size budget, not
 * a timing: the target is ≤ 3 KB per session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { decodeSessionCookie } from '../../gateway/session/session-cookie.js'
import type { SessionSecrets } from '../../gateway/session/active-session.js'
import { TEST_SESSION_SECRET } from '../helpers/gateway.js'
import { BILLING_AUDIENCE, ORDERS_AUDIENCE, signInWithNarrowedTokens, startNarrowedStack } from '../helpers/narrowed-session.js'
import type { Stack } from '../helpers/stack.js'

let stack: Stack
let redis: Redis
beforeAll(async () => {
  stack = await startNarrowedStack()
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

describe('memory per session in Redis', () => {
  it('stays within 3 KB for a session holding its own tokens, two narrowed tokens and a DPoP key', async () => {
    const cookieHeader = await signInWithNarrowedTokens(stack)
    const [sessionKey] = await redis.keys('bff:{s:*}')
    const sealed = (await redis.hgetBuffer(sessionKey!, 'sealed'))!

    // What is measured is the session described: opened with the cookie's key, it holds all of it.
    const cookie = decodeSessionCookie(decodeURIComponent(/(?:^|; )bff=([^;]+)/.exec(cookieHeader)![1]!), createSessionCrypto([TEST_SESSION_SECRET]))!
    const secrets = JSON.parse(createSessionCrypto([TEST_SESSION_SECRET]).unseal(sealed, cookie.key, cookie.handle)) as SessionSecrets & { idToken?: string }
    expect(secrets.refreshToken).toBeDefined()
    expect(Object.keys(secrets.apiTokens ?? {}).sort()).toEqual([BILLING_AUDIENCE, ORDERS_AUDIENCE].sort())
    expect(secrets.apiTokens?.[BILLING_AUDIENCE]?.dpop).toBe(true)
    expect(secrets.dpopKey).toBeDefined()
    // Nothing reads the ID token once the login is verified (the logout URL carries no id_token_hint).
    expect(secrets.idToken).toBeUndefined()

    const sessionBytes = Number(await redis.memory('USAGE', sessionKey!, 'SAMPLES', '0'))
    const indexBytes = Number(await redis.memory('USAGE', 'bff:{u:alice}:sessions', 'SAMPLES', '0'))
    process.stdout.write(`session hash ${sessionBytes} B (sealed field ${sealed.length} B), user index ${indexBytes} B\n`)
    expect(sessionBytes).toBeLessThanOrEqual(3072)
  })
})
