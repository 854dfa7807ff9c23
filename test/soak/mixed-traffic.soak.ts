/**
 * Soak: SOAK_SECONDS (default 180) of steady mixed traffic against two gateway
 * processes sharing one Redis — logins through the IdP, API calls alternating
 * between the instances, token refreshes (5 s access tokens), and every way a
 * session ends (logout, operator revoke, back-channel logout, abandonment).
 *
 * Asserted: no unexpected answer at all; heap and RSS of both gateway processes
 * flat after warm-up; and once traffic stops, the Redis key count returns to
 * its baseline as the short idle/absolute timeouts and replay windows lapse.
 * The figures are printed and written to test-results/soak.json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { startProcessStack, type ProcessStack } from '../faults/process-stack.js'
import { mib, percentile, send, type Outcome } from '../faults/traffic.js'

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 180)
const WARM_UP_MS = Math.max(20_000, SOAK_SECONDS * 1000 * 0.2)
const VIRTUAL_USERS = 12
/** Each virtual user's pause between requests: about 12 × 4 = 48 requests a second in all. */
const PAUSE_MS = 250
const SAMPLE_MS = 2000
const ACCESS_TOKEN_TTL = 5
const IDLE_TIMEOUT = 20
const ABSOLUTE_TIMEOUT = 60
// Also bounds the back-channel logout replay window (120 s max age + this), the longest-lived key.
const CLOCK_TOLERANCE = 30
const DRAIN_DEADLINE_MS = (120 + CLOCK_TOLERANCE + ABSOLUTE_TIMEOUT + 30) * 1000

interface Sample {
  at: number
  gatewayRss: number[]
  gatewayHeap: number[]
  redisKeys: number
  testRss: number
}

const counts = {
  requests: 0,
  logins: 0,
  refreshes: 0,
  endings: { logout: 0, operator: 0, backchannel: 0, abandoned: 0 },
  expectedRefusals: 0,
}
const latencies: number[] = []
const unexpected: string[] = []

let stack: ProcessStack
let redis: Redis
const samples: Sample[] = []

beforeAll(async () => {
  stack = await startProcessStack({
    instances: 2,
    idp: {
      accessTokenTtl: ACCESS_TOKEN_TTL,
      users: Array.from({ length: VIRTUAL_USERS }, (_, i) => ({
        username: `soak${i}`, password: `soak${i}-password`, roles: ['user'], name: `Soak ${i}`, email: `soak${i}@example.com`,
      })),
    },
    gatewayEnv: {
      SESSION_IDLE_TIMEOUT: String(IDLE_TIMEOUT),
      SESSION_ABSOLUTE_TIMEOUT: String(ABSOLUTE_TIMEOUT),
      TOKEN_REFRESH_SKEW: '0',
      OIDC_CLOCK_TOLERANCE: String(CLOCK_TOLERANCE),
    },
  })
  redis = new Redis(stack.redis.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

function check (outcome: Outcome, expected: number, what: string): void {
  counts.requests += 1
  latencies.push(outcome.endedAt - outcome.startedAt)
  if (outcome.status !== expected) {
    unexpected.push(`${what}: ${outcome.method} ${outcome.url} → ${outcome.status} ${outcome.error ?? outcome.networkError ?? outcome.body.slice(0, 120)}`)
  }
}

async function metric (adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN)
}

async function sample (): Promise<Sample> {
  const [gatewayRss, gatewayHeap, redisKeys] = await Promise.all([
    Promise.all(stack.gateways.map(g => g.rss())),
    Promise.all(stack.gateways.map(g => metric(g.adminUrl, 'bff_nodejs_heap_size_used_bytes'))),
    redis.dbsize(),
  ])
  return { at: Date.now(), gatewayRss, gatewayHeap, redisKeys, testRss: process.memoryUsage().rss }
}

/** One virtual user: sign in, use the API on both instances for a while, end the session one of four ways, repeat. */
async function virtualUser (slot: number, running: () => boolean): Promise<void> {
  const username = `soak${slot}`
  const urls = stack.gateways.map(g => g.url)
  let turn = slot
  while (running()) {
    let user: SignedInUser
    try {
      user = await signIn(stack.publicUrl, username)
      counts.logins += 1
    } catch (error) {
      unexpected.push(`login of ${username}: ${(error as Error).message.slice(0, 200)}`)
      await sleep(1000)
      continue
    }
    const headers = { cookie: user.cookie, 'user-agent': user.userAgent }
    const lifetimeEnds = Date.now() + 5000 + Math.random() * 30_000
    while (running() && Date.now() < lifetimeEnds) {
      const url = urls[turn++ % urls.length]!
      const dice = Math.random()
      if (dice < 0.6) check(await send(`${url}/api/orders`, { headers }), 200, 'list orders')
      else if (dice < 0.8) check(await send(`${url}/api/orders/${Math.floor(dice * 1000)}`, { headers }), 200, 'one order')
      else if (dice < 0.9) {
        check(await send(`${url}/api/orders`, {
          method: 'POST',
          headers: { ...headers, 'x-csrf-token': user.csrfToken, 'content-type': 'application/json' },
          body: JSON.stringify({ item: 'widget', quantity: slot }),
        }), 201, 'create order')
      } else check(await send(`${url}/bff/user`, { headers }), 200, 'user')
      await sleep(PAUSE_MS)
    }
    if (!running()) return

    const ending = Math.random()
    const other = urls[turn % urls.length]!
    if (ending < 0.35) {
      check(await send(`${other}/bff/logout`, { method: 'POST', headers: { ...headers, 'x-csrf-token': user.csrfToken } }), 200, 'logout')
      counts.endings.logout += 1
    } else if (ending < 0.55) {
      const mine = JSON.parse((await send(`${other}/bff/sessions`, { headers })).body) as { sessions: Array<{ id: string, current: boolean }> }
      const id = mine.sessions.find(s => s.current)?.id
      const admin = stack.gateways[turn % stack.gateways.length]!.adminUrl
      check(await send(`${admin}/admin/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }), 200, 'operator revoke')
      counts.endings.operator += 1
    } else if (ending < 0.75) {
      const deliveries = await stack.idp.logoutUser(username)
      if (!deliveries.every(d => d.status === 200)) unexpected.push(`back-channel logout of ${username}: ${JSON.stringify(deliveries.map(d => d.status ?? d.error))}`)
      counts.endings.backchannel += 1
    } else {
      counts.endings.abandoned += 1
      continue
    }
    // Ended everywhere: the contract gives the other instance up to 100 ms to see it.
    await sleep(100)
    check(await send(`${urls[turn++ % urls.length]!}/api/orders`, { headers }), 401, 'after the session ended')
    counts.expectedRefusals += 1
  }
}

const median = (values: readonly number[]) => percentile(values, 50)

describe(`soak: ${SOAK_SECONDS} s of mixed traffic on two gateway processes`, () => {
  it('answers every request as expected, keeps heap and RSS flat, and leaves no Redis key behind', async () => {
    const baselineKeys = await redis.dbsize()
    const started = Date.now()
    const deadline = started + SOAK_SECONDS * 1000
    const running = () => Date.now() < deadline
    const users = Array.from({ length: VIRTUAL_USERS }, (_, slot) => virtualUser(slot, running))
    const sampler = (async () => {
      while (running()) {
        samples.push(await sample())
        await sleep(SAMPLE_MS)
      }
    })()
    await Promise.all([...users, sampler])
    const trafficEnded = Date.now()
    counts.refreshes = stack.idp.tokenCalls.refreshToken
    const atEnd = await sample()
    samples.push(atEnd)

    // Every key carries a TTL: sessions (idle/absolute), indexes, replay and rate-limit windows.
    const keysAtEnd = await redis.keys('*')
    const byKind: Record<string, number> = {}
    for (const key of keysAtEnd) {
      const kind = key.replace(/\{[^}]*\}/g, '{…}').replace(/:[A-Za-z0-9_-]{20,}$/, ':…')
      byKind[kind] = (byKind[kind] ?? 0) + 1
    }
    let keys = keysAtEnd.length
    while (keys > baselineKeys && Date.now() - trafficEnded < DRAIN_DEADLINE_MS) {
      await sleep(2000)
      keys = await redis.dbsize()
    }
    const drainedAfter = Date.now() - trafficEnded

    const afterWarmUp = samples.filter(s => s.at - started >= WARM_UP_MS)
    const third = Math.max(1, Math.floor(afterWarmUp.length / 3))
    const early = afterWarmUp.slice(0, third)
    const late = afterWarmUp.slice(-third)
    // Heap in use saws up and down with garbage collection; a leak raises its floor (the lowest sample of a window).
    const figures = stack.gateways.map((_, i) => ({
      instance: i,
      heapFloorMiB: { early: mib(Math.min(...early.map(s => s.gatewayHeap[i]!))), late: mib(Math.min(...late.map(s => s.gatewayHeap[i]!))), max: mib(Math.max(...samples.map(s => s.gatewayHeap[i]!))) },
      rssMiB: { early: mib(median(early.map(s => s.gatewayRss[i]!))), late: mib(median(late.map(s => s.gatewayRss[i]!))), max: mib(Math.max(...samples.map(s => s.gatewayRss[i]!))) },
    }))
    const seconds = (trafficEnded - started) / 1000
    const report = {
      seconds,
      virtualUsers: VIRTUAL_USERS,
      requests: counts.requests,
      requestsPerSecond: Math.round(counts.requests / seconds),
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
      logins: counts.logins,
      refreshes: counts.refreshes,
      endings: counts.endings,
      expectedRefusals: counts.expectedRefusals,
      unexpected: unexpected.length,
      gateways: figures,
      redisKeys: { baseline: baselineKeys, peak: Math.max(...samples.map(s => s.redisKeys)), atEnd: keysAtEnd.length, byKindAtEnd: byKind, final: keys, drainedAfterSeconds: Math.round(drainedAfter / 1000) },
      testProcessRssMiB: { early: mib(median(early.map(s => s.testRss))), late: mib(median(late.map(s => s.testRss))) },
    }
    await mkdir('test-results', { recursive: true })
    await writeFile('test-results/soak.json', JSON.stringify({ report, samples }, null, 2))
    console.info(`[soak] ${JSON.stringify(report, null, 2)}`)

    expect(unexpected.slice(0, 20)).toEqual([])
    expect(counts.logins).toBeGreaterThan(VIRTUAL_USERS)
    expect(counts.refreshes).toBeGreaterThan(0)
    for (const ending of Object.values(counts.endings)) expect(ending).toBeGreaterThan(0)
    // Flat: after warm-up, the last third's heap floor and median RSS are within 20 % (plus a little slack) of the first third's.
    for (const g of figures) {
      expect(g.heapFloorMiB.late, `heap of instance ${g.instance}`).toBeLessThanOrEqual(g.heapFloorMiB.early * 1.2 + 5)
      expect(g.rssMiB.late, `RSS of instance ${g.instance}`).toBeLessThanOrEqual(g.rssMiB.early * 1.2 + 10)
    }
    expect(keys).toBeLessThanOrEqual(baselineKeys)
  })
})
