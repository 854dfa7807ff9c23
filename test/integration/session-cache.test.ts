/**
 * The in-process session cache: it spares the hot path a Redis round trip,
 * every announced write evicts it on every instance, and it is dropped the
 * moment its invalidation channel is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

let stack: Stack
let redis: Redis
beforeAll(async () => {
  stack = await startStack({ instances: 2 })
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

const status = async (url: string, user: SignedInUser) =>
  (await fetch(`${url}/bff/user`, { headers: { cookie: user.cookie, 'user-agent': user.userAgent } })).status

async function hgetallCalls (): Promise<number> {
  const stats = await redis.info('commandstats')
  return Number(/cmdstat_hgetall:calls=(\d+)/.exec(stats)?.[1] ?? 0)
}

async function sessionKeyOf (user: SignedInUser): Promise<string> {
  const response = await fetch(`${stack.publicUrl}/bff/sessions`, { headers: { cookie: user.cookie, 'user-agent': user.userAgent } })
  const { sessions } = await response.json() as { sessions: Array<{ id: string, current: boolean }> }
  return `bff:{s:${sessions.find(s => s.current)!.id}}`
}

async function until (check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('session cache', () => {
  it('serves repeated requests without reading the session from Redis', async () => {
    const user = await signIn(stack.publicUrl)
    const b = stack.gateways[1]!.url
    expect(await status(b, user)).toBe(200)
    const before = await hgetallCalls()
    for (let i = 0; i < 20; i++) expect(await status(b, user)).toBe(200)
    expect(await hgetallCalls() - before).toBe(0)
  })

  it('is evicted on every instance by an announced revocation: the next request on the other instance is 401', async () => {
    const user = await signIn(stack.publicUrl)
    const [a, b] = stack.gateways.map(g => g.url) as [string, string]
    expect(await status(a, user)).toBe(200)
    expect(await status(b, user)).toBe(200)
    const admin = await fetch(`${stack.gateways[0]!.adminUrl}/admin/users/alice/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(admin.status).toBe(200)
    expect(await status(b, user)).toBe(401)
    expect(await status(a, user)).toBe(401)
  })

  it('is dropped when its invalidation channel is lost, and trusted again once it is back', async () => {
    const user = await signIn(stack.publicUrl)
    const b = stack.gateways[1]!.url
    expect(await status(b, user)).toBe(200)
    // A write that bypasses the gateway (and so is never announced) is invisible to a trusted cache...
    await redis.del(await sessionKeyOf(user))
    expect(await status(b, user)).toBe(200)
    // ...until the channel drops: from then on the instance reads Redis and sees the truth.
    await redis.client('KILL', 'TYPE', 'pubsub')
    expect(await status(b, user)).toBe(401)

    // The channel reconnects by itself and the cache is used again.
    const again = await signIn(stack.publicUrl)
    await until(async () => {
      await status(b, again)
      const before = await hgetallCalls()
      await status(b, again)
      return await hgetallCalls() === before
    })
  })

  it('is dropped when the channel stays open but stops answering (a frozen Redis or a silent partition)', async () => {
    const user = await signIn(stack.publicUrl)
    const b = stack.gateways[1]!.url
    expect(await status(b, user)).toBe(200)
    await stack.redis!.pause()
    try {
      // The heartbeat notices within about a second plus a command timeout; from then on the
      // instance asks the frozen store and fails closed instead of serving what it cached.
      await until(async () => (await status(b, user)) === 503, 8000)
    } finally {
      await stack.redis!.resume()
    }
    await until(async () => (await status(b, user)) === 200, 8000)
  })
})
