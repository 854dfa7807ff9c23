/**
 * Sentinel and Cluster as managed services run them: TLS everywhere (data
 * nodes, replication, the sentinels, the cluster bus), an ACL user for the
 * gateway, and sentinels with a password of their own
 * (REDIS_SENTINEL_PASSWORD). The whole product works on each; a wrong
 * sentinel password, a CA that did not sign the sentinels' or the seeds'
 * certificates, and a user that may not run the script commands are each
 * refused at start, naming the variable to fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisAccessError } from '../../gateway/session/redis-start-check.js'
import { startRedisSentinelSet, type RedisSentinelSet } from '../helpers/redis-sentinel.js'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import { createTlsFiles, type TlsFiles } from '../helpers/redis-tls.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { checkAtStart, documentedAclRule, expectSignedInRoundTrip, GATEWAY_PASSWORD, GATEWAY_USER, MANAGED_USERS, portsUsedBy, USER_WITHOUT_SCRIPTS } from '../helpers/managed-redis.js'

const SENTINEL_PASSWORD = 'sentinel-password-8b41c2'

let tls: TlsFiles
beforeAll(async () => { tls = await createTlsFiles() })
afterAll(async () => { await tls?.close() })

/** [case, the variables changed, what the check must say]: evaluated in the test, once the servers run. */
type Refusals = Array<[string, () => Record<string, string>, () => string | RegExp]>

describe('Sentinel with TLS to the data nodes and the sentinels, an ACL user and a sentinel password', () => {
  let set: RedisSentinelSet
  let stack: Stack
  let env: Record<string, string>
  beforeAll(async () => {
    set = await startRedisSentinelSet({ tls, users: MANAGED_USERS, sentinelPassword: SENTINEL_PASSWORD })
    env = {
      REDIS_SENTINELS: set.sentinelList,
      REDIS_SENTINEL_NAME: set.name,
      REDIS_USERNAME: GATEWAY_USER,
      REDIS_PASSWORD: GATEWAY_PASSWORD,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      REDIS_TLS: 'true',
      REDIS_TLS_CA: tls.ca,
    }
    stack = await startStack({ redisEnv: env })
  })
  afterAll(async () => {
    await stack?.close()
    await set?.close()
  })

  it('signs in, proxies and logs out, connected as that user on the TLS ports of the master and the sentinel', async () => {
    await expectSignedInRoundTrip(stack)
    const master = await set.currentMaster()
    const ports = await portsUsedBy(set.client(master), GATEWAY_USER)
    expect(ports.length).toBeGreaterThan(0)
    expect(new Set(ports)).toEqual(new Set([master.tlsPort]))
    // The switch-master watchers stay subscribed on the sentinel, as its default user, over TLS.
    const sentinel = set.sentinels[0]!
    expect(await portsUsedBy(set.sentinelClient(sentinel), 'default')).toContain(sentinel.tlsPort)
  })

  it.each([
    ['a wrong sentinel password', () => ({ REDIS_SENTINEL_PASSWORD: 'wrong-sentinel-password' }),
      () => `REDIS_SENTINEL_PASSWORD: the sentinel at ${set.sentinelList} refused the password (WRONGPASS)`],
    ['sentinels whose certificate another CA signed', () => ({ REDIS_TLS_CA: tls.otherCa }),
      () => `REDIS_TLS_CA: the certificate of the sentinel at ${set.sentinelList} is not trusted (self-signed certificate in certificate chain)`],
    ['a wrong data node password', () => ({ REDIS_PASSWORD: 'wrong-password' }),
      () => 'REDIS_PASSWORD: Redis refused the user "bff" and its password (WRONGPASS)'],
    ['a user that may not run the script commands', () => ({ REDIS_USERNAME: USER_WITHOUT_SCRIPTS }),
      () => 'REDIS_USERNAME: the Redis user "bff-no-scripts" may not run EVALSHA, EVAL (NOPERM)'],
  ] satisfies Refusals)('refuses %s at start', async (_case, change, message) => {
    const refusal = checkAtStart({ ...env, ...change() })
    await expect(refusal).rejects.toThrow(RedisAccessError)
    await expect(refusal).rejects.toThrow(message())
  })
})

describe('Cluster with TLS on every node and the bus, and an ACL user', () => {
  let cluster: RedisCluster
  let stack: Stack
  let env: Record<string, string>
  beforeAll(async () => {
    cluster = await startRedisCluster({ tls, users: [...MANAGED_USERS, `bff-no-cluster-info on >${GATEWAY_PASSWORD} ~* &* +@all -cluster|info`] })
    env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_USERNAME: GATEWAY_USER,
      REDIS_PASSWORD: GATEWAY_PASSWORD,
      REDIS_TLS: 'true',
      REDIS_TLS_CA: tls.ca,
    }
    stack = await startStack({ redisEnv: env })
  })
  afterAll(async () => {
    await stack?.close()
    await cluster?.close()
  })

  it('signs in, proxies and logs out, connected as that user on TLS ports only', async () => {
    await expectSignedInRoundTrip(stack)
    for (const node of cluster.nodes) {
      expect(new Set(await portsUsedBy(cluster.client(node), GATEWAY_USER))).toEqual(new Set([node.tlsPort]))
    }
  })

  it('passes a user made on every node with the ACL rule docs/operations.md recommends (it needs CLUSTER SLOTS and INFO too)', async () => {
    const rule = await documentedAclRule('bff-documented', GATEWAY_PASSWORD)
    for (const node of cluster.nodes) await cluster.client(node).call('ACL', 'SETUSER', ...rule)
    await expect(checkAtStart({ ...env, REDIS_USERNAME: 'bff-documented' })).resolves.toEqual({ ready: true })
  })

  it.each([
    // Whichever seed answers first.
    ['seeds whose certificate another CA signed', () => ({ REDIS_TLS_CA: tls.otherCa }),
      () => /^REDIS_TLS_CA: the certificate of Redis at 127\.0\.0\.1:\d+ is not trusted \(self-signed certificate in certificate chain\)$/],
    ['a wrong password', () => ({ REDIS_PASSWORD: 'wrong-password' }),
      () => /^REDIS_PASSWORD: Redis at 127\.0\.0\.1:\d+ refused the user "bff" and its password \(WRONGPASS\)$/],
    ['a user that may not run the script commands', () => ({ REDIS_USERNAME: USER_WITHOUT_SCRIPTS }),
      () => 'REDIS_USERNAME: the Redis user "bff-no-scripts" may not run EVALSHA, EVAL (NOPERM)'],
    // ioredis's own ready check: refused, the cluster client would only reconnect, silently, for ever.
    ['a user that may not run CLUSTER INFO', () => ({ REDIS_USERNAME: 'bff-no-cluster-info' }),
      () => /^REDIS_USERNAME: Redis at 127\.0\.0\.1:\d+ refused the user "bff-no-cluster-info" a command the Redis client sends \(NOPERM .*'cluster\|info'.*\)$/],
  ] satisfies Refusals)('refuses %s at start', async (_case, change, message) => {
    const refusal = checkAtStart({ ...env, ...change() })
    await expect(refusal).rejects.toThrow(RedisAccessError)
    await expect(refusal).rejects.toThrow(message())
  })
})
