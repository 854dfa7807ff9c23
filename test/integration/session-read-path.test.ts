/**
 * The read path when a session is not in the instance's cache (here none at
 * all: SESSION_CACHE_SIZE=0, as after a restart or with more users than the
 * cache holds): a signed-in request costs Redis ONE command, the HGETALL of
 * the session's hash, in one slot. No read of the user's epoch, no write
 * unless the idle-timeout touch is due. Counted by the private redis-server
 * itself (INFO commandstats), through the whole product: the real IdP, the
 * real gateway, the real API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

let stack: Stack
let redis: Redis
beforeAll(async () => {
  stack = await startStack({ gatewayEnv: { SESSION_CACHE_SIZE: '0' } })
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

/** Calls per command since the server started; INFO itself (how we ask) left out. */
async function commandCalls (): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] !== 'info') calls.set(match[1]!, Number(match[2]))
  }
  return calls
}

/** The commands Redis ran while `action` did, with how often each. */
async function commandsDuring (action: () => Promise<void>): Promise<Record<string, number>> {
  const before = await commandCalls()
  await action()
  const ran: Record<string, number> = {}
  for (const [command, calls] of await commandCalls()) {
    const more = calls - (before.get(command) ?? 0)
    if (more > 0) ran[command] = more
  }
  return ran
}

const get = (user: SignedInUser, path: string) =>
  fetch(`${stack.publicUrl}${path}`, { headers: { cookie: user.cookie, 'user-agent': user.userAgent } })

describe('a request whose session is not cached (SESSION_CACHE_SIZE=0)', () => {
  it.each(['/api/orders', '/bff/user'])('GET %s costs Redis one HGETALL and nothing else', async (path) => {
    const user = await signIn(stack.publicUrl)
    expect((await get(user, path)).status).toBe(200)
    for (let i = 0; i < 5; i++) {
      expect(await commandsDuring(async () => { expect((await get(user, path)).status).toBe(200) })).toEqual({ hgetall: 1 })
    }
  })

  it('still ends at once every session of a user the operator signs out everywhere', async () => {
    const devices = [await signIn(stack.publicUrl), await signIn(stack.publicUrl)]
    for (const device of devices) expect((await get(device, '/api/orders')).status).toBe(200)
    const response = await fetch(`${stack.gateway.adminUrl}/admin/users/alice/sessions`, {
      method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    })
    expect(response.status).toBe(200)
    for (const device of devices) expect((await get(device, '/api/orders')).status).toBe(401)
    const again = await signIn(stack.publicUrl)
    expect((await get(again, '/api/orders')).status).toBe(200)
  })
})
