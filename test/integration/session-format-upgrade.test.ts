/**
 * Upgrading the gateway logs no one out: a session an older version stored
 * (sealed format 1, base64url text, with the ID token it used to keep) is
 * opened by the new one, keeps working, and is re-sealed once in the current
 * format, without the ID token, on its first use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import { decodeSessionCookie } from '../../gateway/session/session-cookie.js'
import { TEST_SESSION_SECRET } from '../helpers/gateway.js'
import { sealFormat1 } from '../helpers/format-1-seal.js'
import { signIn } from '../helpers/sign-in.js'
import { startStack, type Stack } from '../helpers/stack.js'

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

const crypto = createSessionCrypto([TEST_SESSION_SECRET])

describe('sessions stored by an older version', () => {
  it('open after the upgrade and are re-sealed in the current format, without the ID token, on first use', async () => {
    const user = await signIn(stack.publicUrl)
    const cookie = decodeSessionCookie(decodeURIComponent(/(?:^|; )bff=([^;]+)/.exec(user.cookie)![1]!), crypto)!
    const key = `bff:{s:${cookie.handle}}`
    const secrets = JSON.parse(crypto.unseal((await redis.hgetBuffer(key, 'sealed'))!, cookie.key, cookie.handle)) as Record<string, unknown>

    // The record as the version before wrote it: text, format 1, the ID token kept beside the others.
    await stack.gateways[0]!.close()
    const legacy = { ...secrets, idToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl' }
    await redis.hset(key, 'sealed', sealFormat1(TEST_SESSION_SECRET, JSON.stringify(legacy), cookie.key, cookie.handle))
    await stack.restartGateway(0)

    const headers = { cookie: user.cookie, 'user-agent': user.userAgent }
    const me = await fetch(`${stack.publicUrl}/bff/user`, { headers })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ sub: 'alice', csrfToken: user.csrfToken })
    expect((await fetch(`${stack.publicUrl}/api/orders`, { headers })).status).toBe(200)

    const resealed = (await redis.hgetBuffer(key, 'sealed'))!
    expect(crypto.isStale(resealed)).toBe(false)
    expect(await redis.hget(key, 'v')).toBe('2')
    expect(JSON.parse(crypto.unseal(resealed, cookie.key, cookie.handle))).toEqual(secrets)
  })
})
