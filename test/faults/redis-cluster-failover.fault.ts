/**
 * A Redis Cluster master killed under load: the whole product (two gateway
 * instances, the real IdP and API) on three masters with one replica each.
 * While the cluster fails the master over to its replica, users get only 200
 * or 503 `session_store_unavailable`, nothing reaches the API without a
 * verified session (and every forwarded request carries its own user's
 * token), the session cache is not trusted while the topology changes, no
 * session is lost, and the killed master's sessions are served again within
 * 2 s of the promotion showing in CLUSTER NODES.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { metricValue } from '../helpers/admin-metrics.js'
import { DEFAULT_USERS, type MockUser } from '../../upstream-mock/users.js'
import { keyFor } from '../../gateway/session/keys.js'
import { arrivedAt, percentile, send, steadyLoad, tally, TAG_HEADER, until, type Outcome } from './traffic.js'

const RECOVERY_BOUND_MS = 2000
// Low, so that the replica takes over within a few seconds (its election waits about this long).
const NODE_TIMEOUT_MS = 1000
const PROMOTION_TIMEOUT_MS = 15_000
/** How long the gateway may take to notice the master is gone before its cache must be distrusted. */
const DETECTION_BOUND_MS = 500
const SESSIONS_PER_MASTER = 2
const CONCURRENCY = 6
const TRUST_SAMPLE_INTERVAL_MS = 25

const EXTRA_USERS: MockUser[] = ['carol', 'dave', 'erin', 'frank'].map(username => ({
  username, password: `${username}-password`, roles: ['user'], name: username, email: `${username}@example.com`,
}))
const USERNAMES = [...DEFAULT_USERS, ...EXTRA_USERS].map(user => user.username)

interface Session {
  sub: string
  user: SignedInUser
  /** The opaque session id the admin API lists. */
  handle: string
  /** The master holding the session's key when it was created. */
  master: RedisServer
}

interface TrustSample { instance: number, startedAt: number, endedAt: number, trusted: number }

/** Polls every instance's `bff_session_cache_trusted` until stopped. */
function sampleCacheTrust (adminUrls: readonly string[]): { samples: TrustSample[], stop (): Promise<void> } {
  const samples: TrustSample[] = []
  const state = { running: true }
  const loops = adminUrls.map(async (adminUrl, instance) => {
    while (state.running) {
      const startedAt = Date.now()
      const trusted = await metricValue(adminUrl, 'bff_session_cache_trusted')
      samples.push({ instance, startedAt, endedAt: Date.now(), trusted })
      await new Promise(resolve => setTimeout(resolve, TRUST_SAMPLE_INTERVAL_MS))
    }
  })
  return {
    samples,
    async stop () {
      state.running = false
      await Promise.all(loops)
    },
  }
}

/** An instance's trust as it changed, e.g. `1 @-2040 ms, 0 @+3 ms, 1 @+2210 ms` (times from `origin`). */
function trustChanges (samples: readonly TrustSample[], instance: number, origin: number): string {
  const changes: string[] = []
  let last: number | undefined
  for (const sample of samples.filter(s => s.instance === instance)) {
    if (sample.trusted === last) continue
    last = sample.trusted
    const at = sample.startedAt - origin
    changes.push(`${sample.trusted} @${at >= 0 ? '+' : ''}${at} ms`)
  }
  return changes.join(', ')
}

/** When `replica` first called itself a master in its CLUSTER NODES: the start of that poll. */
async function promotionOf (cluster: RedisCluster, replica: RedisServer): Promise<number> {
  const deadline = Date.now() + PROMOTION_TIMEOUT_MS
  for (;;) {
    const askedAt = Date.now()
    const view = (await cluster.topology(replica)).find(node => node.server === replica)
    if (view?.role === 'master') return askedAt
    if (Date.now() > deadline) throw new Error(`replica 127.0.0.1:${replica.port} not promoted within ${PROMOTION_TIMEOUT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** The first 200 for these outcomes started at `since` or later, if every answer after it was a 200 too. */
function recoveredAt (outcomes: readonly Outcome[], since: number): Outcome | undefined {
  const first = outcomes.filter(o => o.startedAt >= since && o.status === 200).sort((a, b) => a.endedAt - b.endedAt)[0]
  if (!first) return undefined
  return outcomes.every(o => o.startedAt < first.endedAt || o.status === 200) ? first : undefined
}

describe('a Redis Cluster master killed under load (three masters, one replica each)', () => {
  let cluster: RedisCluster
  let stack: Stack
  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 1, nodeTimeoutMs: NODE_TIMEOUT_MS })
    stack = await startStack({
      instances: 2,
      idp: { users: [...DEFAULT_USERS, ...EXTRA_USERS] },
      redisEnv: { REDIS_CLUSTER_NODES: cluster.seeds },
    })
  })
  afterAll(async () => {
    await stack?.close()
    await cluster?.close()
  })

  async function sessionIdsOf (sub: string): Promise<string[]> {
    const response = await fetch(`${stack.gateway.adminUrl}/admin/users/${encodeURIComponent(sub)}/sessions`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    })
    expect(response.status).toBe(200)
    return ((await response.json()) as { sessions: Array<{ id: string }> }).sessions.map(s => s.id)
  }

  /** Signs the users in, one after the other, until every master holds `SESSIONS_PER_MASTER` sessions. */
  async function sessionsOnEveryMaster (masters: readonly RedisServer[]): Promise<Session[]> {
    const sessions: Session[] = []
    const on = (master: RedisServer) => sessions.filter(s => s.master === master).length
    for (let i = 0; masters.some(master => on(master) < SESSIONS_PER_MASTER); i++) {
      if (i >= 40) throw new Error(`40 sessions did not cover every master ${SESSIONS_PER_MASTER} times`)
      const sub = USERNAMES[i % USERNAMES.length]!
      const before = new Set(await sessionIdsOf(sub))
      const user = await signIn(stack.publicUrl, sub)
      const [handle, ...more] = (await sessionIdsOf(sub)).filter(id => !before.has(id))
      expect(more).toEqual([])
      sessions.push({ sub, user, handle: handle!, master: await cluster.nodeFor(keyFor.session(handle!)) })
    }
    return sessions
  }

  it('answers only 200 or 503 session_store_unavailable, forwards nothing unverified, distrusts its cache, loses no session, and serves the killed master\'s sessions within 2 s of the promotion', async () => {
    const masters = (await cluster.topology()).filter(node => node.role === 'master').map(node => node.server!)
    expect(masters).toHaveLength(3)
    const sessions = await sessionsOnEveryMaster(masters)
    const victim = sessions[0]!.master
    const [replica] = await cluster.replicasOf(victim)
    expect(replica).toBeDefined()
    const onVictim = sessions.filter(s => s.master === victim)

    // Round robin over the sessions and, every other round, over the two instances.
    const instanceUrls = stack.gateways.map(g => g.url)
    const sessionOf = new Map<string, Session>()
    const instanceOf = new Map<string, number>()
    const load = steadyLoad(async (i) => {
      const session = sessions[i % sessions.length]!
      const instance = Math.floor(i / sessions.length) % instanceUrls.length
      const outcome = await send(`${instanceUrls[instance]!}/api/orders`, { headers: { cookie: session.user.cookie }, timeoutMs: 10_000 })
      sessionOf.set(outcome.tag, session)
      instanceOf.set(outcome.tag, instance)
      return outcome
    }, CONCURRENCY)
    const trust = sampleCacheTrust(stack.gateways.map(g => g.adminUrl))
    const outcomesFor = (session: Session, instance?: number) => load.outcomes.filter(o =>
      sessionOf.get(o.tag) === session && (instance === undefined || instanceOf.get(o.tag) === instance))

    let killedAt = 0
    let promotedAt = 0
    try {
      // Warm: every session served by both instances (and so cached there), both caches trusted.
      expect(await until(() => sessions.every(s => [0, 1].every(instance =>
        outcomesFor(s, instance).some(o => o.status === 200))), 15_000)).toBe(true)
      expect(await until(() => [0, 1].every(instance =>
        trust.samples.findLast(sample => sample.instance === instance)?.trusted === 1), 5000)).toBe(true)
      // Nothing the victim acknowledged is missing on its replica.
      await cluster.waitForReplication(victim)

      await victim.kill()
      killedAt = Date.now()
      promotedAt = await promotionOf(cluster, replica!)
      await until(() => onVictim.every(s => [0, 1].every(instance =>
        recoveredAt(outcomesFor(s, instance), promotedAt) !== undefined)), RECOVERY_BOUND_MS + 3000)
      // A little steady service after the recovery, to see that it holds.
      await new Promise(resolve => setTimeout(resolve, 500))
    } finally {
      await load.stop()
    }
    const trustedAgain = await until(() => [0, 1].every(instance =>
      trust.samples.findLast(sample => sample.instance === instance && sample.startedAt > promotedAt)?.trusted === 1), 5000)
    await trust.stop()
    const outcomes = load.outcomes
    const summary = JSON.stringify(tally(outcomes))

    // Only success or the store's own refusal, as JSON; never a 500, a 502 or a 401 for a live session.
    expect(Object.keys(tally(outcomes)).every(key => key === '200' || key === '503 session_store_unavailable'), summary).toBe(true)
    const refused = outcomes.filter(o => o.status === 503)
    expect(refused.every(o => o.contentType.startsWith('application/json'))).toBe(true)
    // Refusals belong to the switch: none before the kill, none started after the recovery bound.
    expect(refused.every(o => o.endedAt >= killedAt && o.startedAt <= promotedAt + RECOVERY_BOUND_MS)).toBe(true)
    // The switch was felt: the killed master's sessions were refused while it was gone.
    expect(onVictim.some(s => outcomesFor(s).some(o => o.status === 503 && o.startedAt >= killedAt))).toBe(true)

    // What the API saw: exactly the requests answered 200, once each, each with its own user's token.
    const served = outcomes.filter(o => o.status === 200)
    expect(arrivedAt(stack.api, outcomes).map(o => o.tag).sort()).toEqual(served.map(o => o.tag).sort())
    const tags = new Set(outcomes.map(o => o.tag))
    const forwarded = stack.api.received.filter(r => tags.has(String(r.headers[TAG_HEADER])))
    expect(forwarded).toHaveLength(served.length)
    for (const request of forwarded) {
      expect(request.headers.authorization).toMatch(/^Bearer /)
      expect(request.token?.claims.sub).toBe(sessionOf.get(String(request.headers[TAG_HEADER]))!.sub)
    }

    // Recovery: on both instances, each of the killed master's sessions within 2 s of the promotion.
    const recoveries = onVictim.flatMap(s => [0, 1].map(instance => {
      const first = recoveredAt(outcomesFor(s, instance), promotedAt)
      expect(first, `${s.sub} on instance ${instance}: ${JSON.stringify(tally(outcomesFor(s, instance)))}`).toBeDefined()
      return first!.endedAt - promotedAt
    }))
    expect(Math.max(...recoveries)).toBeLessThan(RECOVERY_BOUND_MS)

    // The cache: not trusted from shortly after the kill until the promotion, and trusted again after it.
    for (const instance of [0, 1]) {
      const switching = trust.samples.filter(sample => sample.instance === instance &&
        sample.startedAt >= killedAt + DETECTION_BOUND_MS && sample.endedAt <= promotedAt)
      expect(switching.length, `instance ${instance}: no sample while switching`).toBeGreaterThan(0)
      expect(switching.every(sample => sample.trusted === 0),
        `instance ${instance} trusted its cache while the master was gone (promoted @+${promotedAt - killedAt} ms): ${trustChanges(trust.samples, instance, killedAt)}`).toBe(true)
    }
    expect(trustedAgain).toBe(true)

    // No session lost: every user still signed in, on both instances.
    for (const session of sessions) {
      for (const url of instanceUrls) {
        const me = await send(`${url}/bff/user`, { headers: { cookie: session.user.cookie } })
        expect(me.status, `${session.sub} on ${url}`).toBe(200)
        expect(JSON.parse(me.body)).toMatchObject({ sub: session.sub })
      }
    }

    const firstSample = (instance: number, after: number, trusted: number) => trust.samples.find(sample =>
      sample.instance === instance && sample.startedAt >= after && sample.trusted === trusted)!.endedAt - after
    const distrusted = [0, 1].map(instance => firstSample(instance, killedAt, 0))
    const trustedAfter = [0, 1].map(instance => firstSample(instance, promotedAt, 1))
    console.info(`[faults] cluster master killed: ${sessions.length} sessions (${onVictim.length} on it), ${outcomes.length} requests ${summary}; ` +
      `replica promoted ${promotedAt - killedAt} ms after the kill; the killed master's sessions served again ${Math.min(...recoveries)}–${Math.max(...recoveries)} ms after the promotion; ` +
      `caches distrusted ${distrusted.join(' / ')} ms after the kill, trusted again ${trustedAfter.join(' / ')} ms after the promotion; refusals took up to ${percentile(refused.map(o => o.endedAt - o.startedAt), 100)} ms`)
  })
})
