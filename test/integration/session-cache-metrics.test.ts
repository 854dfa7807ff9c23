/**
 * What the session cache tells an operator (and the bench) on `/metrics`: its
 * hits and misses, how many sessions it holds and their estimated bytes (the
 * budget SESSION_CACHE_MEMORY is counted in), through the real gateway on a
 * private redis-server with real logins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

let stack: Stack
beforeAll(async () => { stack = await startStack({ instances: 2 }) })
afterAll(async () => { await stack?.close() })

interface CacheMetrics { hits: number, misses: number, entries: number, bytes: number }

/** The four series of one instance, from one scrape; absent ones are undefined. */
async function cacheMetrics (adminUrl: string): Promise<Partial<CacheMetrics>> {
  const text = await (await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()
  const value = (name: string) => {
    const line = text.split('\n').find(l => l.startsWith(`${name} `))
    return line === undefined ? undefined : Number(line.split(' ').at(-1))
  }
  const found = {
    hits: value('bff_session_cache_hits_total'),
    misses: value('bff_session_cache_misses_total'),
    entries: value('bff_session_cache_entries'),
    bytes: value('bff_session_cache_bytes'),
  }
  return Object.fromEntries(Object.entries(found).filter(([, v]) => v !== undefined))
}

async function read (adminUrl: string): Promise<CacheMetrics> {
  const metrics = await cacheMetrics(adminUrl)
  expect(Object.keys(metrics)).toHaveLength(4)
  return metrics as CacheMetrics
}

const userStatus = async (url: string, user: SignedInUser) =>
  (await fetch(`${url}/bff/user`, { headers: { cookie: user.cookie, 'user-agent': user.userAgent } })).status

describe('session cache metrics', () => {
  it('count the first request of a session as a miss, the ones it then answers as hits, and what it holds', async () => {
    const { url, adminUrl } = stack.gateways[1]!
    const user = await signIn(stack.publicUrl, 'bob')
    const before = await read(adminUrl)

    expect(await userStatus(url, user)).toBe(200)
    const stored = await read(adminUrl)
    expect(stored).toMatchObject({ hits: before.hits, misses: before.misses + 1, entries: before.entries + 1 })
    // A real session (access, refresh and ID token, claims) is estimated at a few KB.
    expect(stored.bytes - before.bytes).toBeGreaterThan(1500)
    expect(stored.bytes - before.bytes).toBeLessThan(8000)

    for (let i = 0; i < 5; i++) expect(await userStatus(url, user)).toBe(200)
    expect(await read(adminUrl)).toEqual({ ...stored, hits: stored.hits + 5 })

    // Ended elsewhere (an operator, on the other instance): announced, evicted, its bytes given back.
    const ended = await fetch(`${stack.gateways[0]!.adminUrl}/admin/users/bob/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(ended.status).toBe(200)
    expect(await userStatus(url, user)).toBe(401)
    expect(await read(adminUrl)).toMatchObject({ entries: before.entries, bytes: before.bytes })
  })

  it('with SESSION_CACHE_SIZE, hold no more sessions than it says, whatever the memory budget', async () => {
    await stack.gateways[1]!.close()
    const { url, adminUrl } = await stack.restartGateway(1, { SESSION_CACHE_SIZE: '1' })
    const [alice, bob] = [await signIn(stack.publicUrl, 'alice'), await signIn(stack.publicUrl, 'bob')]
    expect(await userStatus(url, alice)).toBe(200)
    expect(await userStatus(url, bob)).toBe(200)
    const full = await read(adminUrl)
    expect(full).toMatchObject({ entries: 1, misses: 2 })
    // Alice's session gave way to Bob's: her next request reads the store again.
    expect(await userStatus(url, alice)).toBe(200)
    expect(await read(adminUrl)).toMatchObject({ entries: 1, misses: 3 })
  })

  it('are absent when the cache is off', async () => {
    await stack.gateways[1]!.close()
    const { url, adminUrl } = await stack.restartGateway(1, { SESSION_CACHE_MEMORY: '0' })
    const user = await signIn(stack.publicUrl, 'alice')
    expect(await userStatus(url, user)).toBe(200)
    expect(await cacheMetrics(adminUrl)).toEqual({})
  })
})
