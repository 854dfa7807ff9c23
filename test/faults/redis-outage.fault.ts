/**
 * The session store goes away under load: a real redis-server process killed,
 * stopped or stalled (SIGSTOP) while requests keep coming. The gateway must
 * fail closed (503, nothing forwarded), keep the browser's cookie, stay up
 * without leaking, and serve again by itself once Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { arrivedAt, clearingCookies, heapAfterGc, mib, percentile, send, steadyLoad, tally, until, type Outcome } from './traffic.js'

const RECOVERY_BOUND_MS = 2000
// ioredis' commandTimeout (gateway/session/redis-client.ts). Auto-pipelined commands wait for the
// pipeline before them, so against a stalled server one store call takes at most two timeouts.
const COMMAND_TIMEOUT_MS = 1500
const STALL_BOUND_MS = 2 * COMMAND_TIMEOUT_MS + 1000

const apiCall = (url: string, user: SignedInUser) => () => send(`${url}/api/orders`, { headers: { cookie: user.cookie } })

/** `total` requests, `concurrency` at a time, counted by status only (nothing kept per request). */
async function burst (request: () => Promise<Outcome>, total: number, concurrency: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  let issued = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (issued < total) {
      issued += 1
      const o = await request()
      const key = `${o.status}${o.error ? ` ${o.error}` : ''}`
      counts[key] = (counts[key] ?? 0) + 1
    }
  }))
  return counts
}

function sessionCookieLines (outcomes: readonly Outcome[], name: string): string[] {
  return outcomes.flatMap(o => o.setCookies.filter(line => line.startsWith(`${name}=`)))
}

/** Time from `since` to the end of the first request, started after it, that was not refused for the store. */
function recovery (outcomes: readonly Outcome[], since: number): { ms: number, first: Outcome } | undefined {
  const first = outcomes
    .filter(o => o.startedAt >= since && o.error !== 'session_store_unavailable')
    .sort((a, b) => a.endedAt - b.endedAt)[0]
  return first ? { ms: first.endedAt - since, first } : undefined
}

describe('Redis killed under load (no persistence)', () => {
  let stack: Stack
  let url: string
  let cookieName: string
  beforeAll(async () => {
    stack = await startStack()
    url = stack.publicUrl
    cookieName = stack.gateway.config.cookie.name
  })
  afterAll(async () => { await stack?.close() })

  it('answers 503 session_store_unavailable while it is down, forwards nothing, keeps the cookie, leaks nothing, and serves again within 2 s (signed out: the data is gone)', async () => {
    const user = await signIn(url)
    const call = apiCall(url, user)
    const load = steadyLoad(call, 8)
    expect(await until(() => load.outcomes.filter(o => o.status === 200).length >= 50, 10_000)).toBe(true)

    await stack.redis!.kill()
    const downAt = Date.now()
    await until(() => load.outcomes.filter(o => o.startedAt >= downAt).length >= 300, 10_000)
    await load.stop()

    // What the client got: every request started after the crash is refused, fail closed, as JSON.
    const duringOutage = load.outcomes.filter(o => o.startedAt >= downAt)
    expect(tally(duringOutage)).toEqual({ '503 session_store_unavailable': duringOutage.length })
    expect(duringOutage.every(o => o.contentType.startsWith('application/json'))).toBe(true)
    // The cookie is kept: no Set-Cookie for it at all, let alone one clearing it.
    expect(sessionCookieLines(duringOutage, cookieName)).toEqual([])
    expect(duringOutage.flatMap(o => clearingCookies(o.setCookies, cookieName))).toEqual([])
    const viaBrowser = await user.browser.fetch(`${url}/bff/user`)
    expect(viaBrowser.status).toBe(503)
    expect(user.browser.cookie(url, cookieName)).toBeDefined()
    // What the upstream saw: none of them.
    expect(arrivedAt(stack.api, duringOutage)).toEqual([])
    // Failing closed is immediate (no offline queue), not a wait for a timeout.
    const outageP99 = percentile(duringOutage.map(o => o.endedAt - o.startedAt), 99)
    expect(outageP99).toBeLessThan(500)

    // A bounded burst while the store is down does not grow the heap (the gateway runs in this process).
    await burst(call, 500, 25)
    const heapBefore = heapAfterGc()
    const counts = await burst(call, 4000, 25)
    const heapAfter = heapAfterGc()
    expect(counts).toEqual({ '503 session_store_unavailable': 4000 })
    expect(heapAfter - heapBefore).toBeLessThan(8 * 1024 * 1024)
    // Alive, and honest about readiness.
    expect((await send(`${url}/healthz`)).status).toBe(200)
    expect((await send(`${stack.gateway.adminUrl}/readyz`)).body).toContain('"sessionStore":"unavailable"')

    const again = steadyLoad(call, 4)
    await stack.redis!.start()
    const upAt = Date.now()
    await until(() => recovery(again.outcomes, upAt) !== undefined, 5000)
    await again.stop()
    const recovered = recovery(again.outcomes, upAt)
    expect(recovered, JSON.stringify(tally(again.outcomes))).toBeDefined()
    expect(recovered!.ms).toBeLessThan(RECOVERY_BOUND_MS)
    // The session died with Redis' memory: signed out, and still nothing forwarded.
    expect(recovered!.first).toMatchObject({ status: 401, error: 'unauthenticated' })
    const afterRecovery = again.outcomes.filter(o => o.startedAt >= recovered!.first.endedAt)
    expect(tally(afterRecovery)).toEqual({ '401 unauthenticated': afterRecovery.length })
    expect(arrivedAt(stack.api, again.outcomes)).toEqual([])
    const fresh = await signIn(url)
    expect((await apiCall(url, fresh)()).status).toBe(200)

    console.info(`[faults] redis killed: ${duringOutage.length} requests during the outage, all 503 (p99 ${outageP99} ms), ` +
      `heap after gc ${mib(heapBefore)} → ${mib(heapAfter)} MiB over a 4000-request burst, first answer ${recovered!.ms} ms after redis answered`)
  })
})

describe('Redis stopped and started with persistence, two instances', () => {
  let stack: Stack
  beforeAll(async () => { stack = await startStack({ instances: 2, redisPersistence: true }) })
  afterAll(async () => { await stack?.close() })

  it('fails closed on both instances while it is down, then the same session works on both within 2 s', async () => {
    const user = await signIn(stack.publicUrl)
    const urls = stack.gateways.map(g => g.url)
    const me = async (url: string) => JSON.parse((await send(`${url}/bff/user`, { headers: { cookie: user.cookie } })).body) as { sub: string, csrfToken: string }
    const before = await me(urls[1]!)
    const call = (i: number) => send(`${urls[i % 2]!}/api/orders`, { headers: { cookie: user.cookie } })
    const load = steadyLoad(call, 6)
    expect(await until(() => load.outcomes.filter(o => o.status === 200).length >= 40, 10_000)).toBe(true)

    await stack.redis!.stop()
    const downAt = Date.now()
    await until(() => load.outcomes.filter(o => o.startedAt >= downAt).length >= 200, 10_000)
    const restarting = stack.redis!.start()
    const duringOutage = load.outcomes.filter(o => o.startedAt >= downAt && o.endedAt <= Date.now())
    await restarting
    const upAt = Date.now()
    await until(() => load.outcomes.some(o => o.startedAt >= upAt && o.status === 200 && o.url.startsWith(urls[0]!)) &&
      load.outcomes.some(o => o.startedAt >= upAt && o.status === 200 && o.url.startsWith(urls[1]!)), 5000)
    await load.stop()

    expect(tally(duringOutage)).toEqual({ '503 session_store_unavailable': duringOutage.length })
    expect(new Set(duringOutage.map(o => new URL(o.url).port)).size).toBe(2)
    expect(arrivedAt(stack.api, duringOutage)).toEqual([])
    expect(sessionCookieLines(duringOutage, stack.gateway.config.cookie.name)).toEqual([])

    const perInstance = urls.map(url => recovery(load.outcomes.filter(o => o.url.startsWith(url)), upAt))
    for (const r of perInstance) {
      expect(r).toMatchObject({ first: { status: 200 } })
      expect(r!.ms).toBeLessThan(RECOVERY_BOUND_MS)
    }
    const afterRecovery = load.outcomes.filter(o => o.startedAt >= Math.max(...perInstance.map(r => r!.first.endedAt)))
    expect(tally(afterRecovery)).toEqual({ 200: afterRecovery.length })
    // The very same session: same user, same CSRF token, no new login.
    expect(await me(urls[0]!)).toEqual(before)
    console.info(`[faults] redis stopped (AOF on): ${duringOutage.length} requests during the outage, all 503; ` +
      `same session served again after ${perInstance.map(r => r!.ms).join(' / ')} ms (instance 0 / 1)`)
  })

  it('stalled (SIGSTOP): requests that need it get 503 after the command timeout, none hangs, nothing unverified is forwarded; after SIGCONT they succeed at once', async () => {
    const [zero, one] = stack.gateways.map(g => g.url) as [string, string]
    const user = await signIn(zero, 'bob')
    const hot = () => send(`${zero}/api/orders`, { headers: { cookie: user.cookie } })
    // Instance 1 has never loaded this session, so it has to ask the store whatever it caches.
    const cold = () => send(`${one}/api/orders`, { headers: { cookie: user.cookie } })
    const login = () => send(`${zero}/bff/login`)
    expect((await hot()).status).toBe(200)

    stack.redis!.pause()
    let coldOutcomes: Outcome[], hotOutcomes: Outcome[], logins: Outcome[], sequential: Outcome[]
    let health: Outcome
    try {
      const waves = Promise.all([
        Promise.all(Array.from({ length: 10 }, cold)),
        Promise.all(Array.from({ length: 5 }, hot)),
        Promise.all(Array.from({ length: 3 }, login)),
      ])
      // Liveness does not depend on the store.
      health = await send(`${zero}/healthz`)
      ;[coldOutcomes, hotOutcomes, logins] = await waves
      // One after the other: the wait does not grow as timed-out commands pile up.
      sequential = []
      for (let i = 0; i < 3; i++) sequential.push(await cold())
    } finally {
      stack.redis!.resume()
    }
    const resumedAt = Date.now()

    expect(health.status).toBe(200)
    expect(health.endedAt - health.startedAt).toBeLessThan(500)
    const needStore = [...coldOutcomes, ...sequential]
    expect(tally(needStore)).toEqual({ '503 session_store_unavailable': needStore.length })
    const waits = needStore.map(o => o.endedAt - o.startedAt)
    // They waited for the store (the command timeout), boundedly, rather than failing for some other reason.
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 100)
    expect(Math.max(...waits)).toBeLessThan(STALL_BOUND_MS)
    expect(arrivedAt(stack.api, needStore)).toEqual([])
    // A login needs the store twice (rate-limit counter, login state): two bounded waits at most, no redirect.
    expect(tally(logins)).toEqual({ '503 session_store_unavailable': logins.length })
    expect(Math.max(...logins.map(o => o.endedAt - o.startedAt))).toBeLessThan(2 * STALL_BOUND_MS)
    // A session this instance verified before the stall may be served from its cache; either way, bounded.
    for (const o of hotOutcomes) {
      expect([200, 503]).toContain(o.status)
      expect(o.endedAt - o.startedAt).toBeLessThan(STALL_BOUND_MS)
    }
    expect(sessionCookieLines([...needStore, ...hotOutcomes], stack.gateway.config.cookie.name)).toEqual([])

    let after: Outcome | undefined
    await until(async () => (after = await cold()).status === 200, 5000, 0)
    expect(after?.status).toBe(200)
    expect(after!.endedAt - resumedAt).toBeLessThan(RECOVERY_BOUND_MS)
    console.info(`[faults] redis stalled: ${needStore.length} store-bound requests answered 503 in ${Math.min(...waits)}–${Math.max(...waits)} ms, ` +
      `logins 503 in ≤ ${Math.max(...logins.map(o => o.endedAt - o.startedAt))} ms, cached session ${JSON.stringify(tally(hotOutcomes))}; ` +
      `first 200 ${after!.endedAt - resumedAt} ms after SIGCONT`)
  })
})
