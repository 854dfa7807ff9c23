/**
 * The bench's many-users sessions (bench/session-factory.ts) are real sessions:
 * made by the gateway's own session code from a signed-in user's tokens, each
 * its own user, and served by a running gateway like any other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createSessionFactory, type SessionFactory } from '../../bench/session-factory.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'

let stack: Stack
let alice: SignedInUser
let factory: SessionFactory
let redis: Redis
beforeAll(async () => {
  stack = await startStack()
  redis = new Redis(stack.redis!.url)
  alice = await signIn(stack.publicUrl)
  const cookieName = stack.gateway.config.cookie.name
  const value = alice.cookie.split('; ').find(pair => pair.startsWith(`${cookieName}=`))?.slice(cookieName.length + 1)
  factory = await createSessionFactory(stack.gateway.config, value!)
})
afterAll(async () => {
  await factory?.close()
  redis?.disconnect()
  await stack?.close()
})

const asBrowser = (cookie: string) => ({ cookie, 'user-agent': alice.userAgent })

describe('the bench\'s session factory', () => {
  it('makes sessions the gateway serves, each its own user with the signed-in user\'s roles', async () => {
    const cookies = await factory.grow(30)
    expect(new Set(cookies).size).toBe(30)
    for (const n of [0, 17, 29]) {
      const cookie = `${factory.cookieName}=${cookies[n]}`
      const user = await fetch(`${stack.publicUrl}/bff/user`, { headers: asBrowser(cookie) })
      expect(user.status).toBe(200)
      expect(await user.json()).toMatchObject({ sub: `bench-user-${n}`, roles: ['user'] })
      const orders = await fetch(`${stack.publicUrl}/api/orders`, { headers: asBrowser(cookie) })
      expect(orders.status).toBe(200)
    }
    // Per-user keys: each user's own session index.
    expect(await redis.zcard('bff:{u:bench-user-17}:sessions')).toBe(1)
  })

  it('grows by making only the sessions it lacks, keeping those it made', async () => {
    const before = [...await factory.grow(30)]
    const after = await factory.grow(45)
    expect(after).toHaveLength(45)
    expect(after.slice(0, 30)).toEqual(before)
    const last = await fetch(`${stack.publicUrl}/bff/user`, { headers: asBrowser(`${factory.cookieName}=${after[44]}`) })
    expect(await last.json()).toMatchObject({ sub: 'bench-user-44' })
  })
})
