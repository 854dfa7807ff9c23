/**
 * Standalone managed Redis: a rediss:// URL with an ACL user and password in
 * it and a CA of one's own (REDIS_TLS_CA), against a real redis-server serving
 * TLS with certificates made for the test. The whole product works over it;
 * and a Redis that answers but refuses the gateway (wrong password, a
 * certificate signed by another CA, a user that may not run EVALSHA) stops a
 * real gateway process at start with one line naming the variable to fix,
 * while a Redis that does not answer yet does not.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { RedisAccessError } from '../../gateway/session/redis-start-check.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { createTlsFiles, type TlsFiles } from '../helpers/redis-tls.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { freePort, REFUSED_PORT } from '../helpers/free-port.js'
import { checkAtStart, documentedAclRule, expectSignedInRoundTrip, gatewayEnvWithoutRedis, GATEWAY_PASSWORD, GATEWAY_USER, MANAGED_USERS, portsUsedBy, USER_WITHOUT_SCRIPTS } from '../helpers/managed-redis.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const WRONG_PASSWORD = 'wrong-password-5d21e7'

// Users a managed service might hand out: without the ACL commands (so without ACL DRYRUN),
// limited to other keys or to other channels, or without even MULTI.
const RESTRICTED_USERS = [
  `bff-no-admin on >${GATEWAY_PASSWORD} ~* &* +@all -@admin -evalsha`,
  `bff-other-keys on >${GATEWAY_PASSWORD} ~other:* &* +@all`,
  `bff-other-channels on >${GATEWAY_PASSWORD} ~* &other +@all -@admin`,
  `bff-no-multi on >${GATEWAY_PASSWORD} ~* &* +@all -@admin -multi -hset`,
]

let tls: TlsFiles
let redis: RedisServer
let admin: Redis

const urlFor = (user: string, password = GATEWAY_PASSWORD) =>
  `rediss://${user}:${password}@127.0.0.1:${redis.tlsPort}`

beforeAll(async () => {
  tls = await createTlsFiles()
  redis = await startRedisServer({ tls, users: [...MANAGED_USERS, ...RESTRICTED_USERS] })
  admin = new Redis(redis.url, { maxRetriesPerRequest: 0 })
})
afterAll(async () => {
  admin?.disconnect()
  await redis?.close()
  await tls?.close()
})

describe('the gateway on a rediss:// URL with an ACL user and REDIS_TLS_CA', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ redisEnv: { REDIS_URL: urlFor(GATEWAY_USER), REDIS_TLS_CA: tls.ca } })
  })
  afterAll(async () => { await stack?.close() })

  it('signs in, proxies and logs out, connected as that user on the TLS port only', async () => {
    await expectSignedInRoundTrip(stack)
    const ports = await portsUsedBy(admin, GATEWAY_USER)
    expect(ports.length).toBeGreaterThan(0)
    expect(new Set(ports)).toEqual(new Set([redis.tlsPort]))
  })
})

describe('the start-up check (checkRedisAtStart)', () => {
  const standalone = (url: string, ca: string | undefined) => ({ REDIS_URL: url, ...(ca ? { REDIS_TLS_CA: ca } : {}) })

  it('passes a user with every command the gateway needs', async () => {
    await expect(checkAtStart(standalone(urlFor(GATEWAY_USER), tls.ca))).resolves.toEqual({ ready: true })
  })

  it.each([
    ['a wrong password', WRONG_PASSWORD, 'ours', () => `REDIS_URL: Redis at 127.0.0.1:${redis.tlsPort} refused the user "bff" and its password (WRONGPASS)`],
    ['a certificate signed by another CA', GATEWAY_PASSWORD, 'other', () => `REDIS_TLS_CA: the certificate of Redis at 127.0.0.1:${redis.tlsPort} is not trusted (self-signed certificate in certificate chain)`],
    ['a private CA and no REDIS_TLS_CA', GATEWAY_PASSWORD, 'none', () => `REDIS_TLS_CA: the certificate of Redis at 127.0.0.1:${redis.tlsPort} is not trusted (self-signed certificate in certificate chain)`],
  ] as const)('refuses %s, naming the variable, with the Redis error as the cause', async (_case, password, ca, message) => {
    const caFile = { ours: tls.ca, other: tls.otherCa, none: undefined }[ca]
    const refusal = checkAtStart(standalone(urlFor(GATEWAY_USER, password), caFile))
    await expect(refusal).rejects.toThrow(RedisAccessError)
    await expect(refusal).rejects.toThrow(message())
    await expect(refusal).rejects.toHaveProperty('cause')
  })

  it.each([
    [USER_WITHOUT_SCRIPTS, 'REDIS_URL: the Redis user "bff-no-scripts" may not run EVALSHA, EVAL (NOPERM)'],
    // Without ACL DRYRUN: the commands are queued in a transaction that is discarded.
    ['bff-no-admin', 'REDIS_URL: the Redis user "bff-no-admin" may not run EVALSHA (NOPERM)'],
    ['bff-other-keys', 'REDIS_URL: the Redis user "bff-other-keys" may not use keys such as bff:{s:startup-check}:check-hash (NOPERM)'],
    ['bff-other-channels', 'REDIS_URL: the Redis user "bff-other-channels" may not use the channel bff:invalidate (NOPERM)'],
    // Not even a transaction: the commands run, on the check's own keys, which it removes.
    ['bff-no-multi', 'REDIS_URL: the Redis user "bff-no-multi" may not run MULTI, HSET (NOPERM)'],
  ])('names what the user %s may not do, and changes nothing', async (user, message) => {
    const keysBefore = await admin.dbsize()
    await expect(checkAtStart(standalone(urlFor(user), tls.ca))).rejects.toThrow(message)
    expect(await admin.dbsize()).toBe(keysBefore)
  })

  it('passes a user made with the ACL rule docs/operations.md recommends', async () => {
    await admin.call('ACL', 'SETUSER', ...await documentedAclRule('bff-documented', GATEWAY_PASSWORD))
    await expect(checkAtStart(standalone(urlFor('bff-documented'), tls.ca))).resolves.toEqual({ ready: true })
  })

  it('lets a Redis that does not answer pass: the gateway starts and answers 503 until it does', async () => {
    const outcome = await checkAtStart(standalone(`redis://127.0.0.1:${REFUSED_PORT}`, undefined), 300)
    expect(outcome.ready).toBe(false)
    expect(outcome.lastError).toMatchObject({ code: 'ECONNREFUSED' })
  })
})

// Each case is a process of its own, most of its time spent starting Node: they run side by side.
describe.concurrent('gateway process start-up against a Redis that refuses it', () => {
  // [case, the Redis variables, the line]: evaluated in the test, once Redis runs.
  const refusals: Array<[string, () => Record<string, string>, () => string]> = [
    ['a wrong password', () => ({ REDIS_URL: urlFor(GATEWAY_USER, WRONG_PASSWORD), REDIS_TLS_CA: tls.ca }),
      () => `REDIS_URL: Redis at 127.0.0.1:${redis.tlsPort} refused the user "bff" and its password (WRONGPASS)`],
    ['a certificate signed by another CA', () => ({ REDIS_URL: urlFor(GATEWAY_USER), REDIS_TLS_CA: tls.otherCa }),
      () => `REDIS_TLS_CA: the certificate of Redis at 127.0.0.1:${redis.tlsPort} is not trusted (self-signed certificate in certificate chain)`],
    ['a user that may not run EVALSHA', () => ({ REDIS_URL: urlFor(USER_WITHOUT_SCRIPTS), REDIS_TLS_CA: tls.ca }),
      () => 'REDIS_URL: the Redis user "bff-no-scripts" may not run EVALSHA, EVAL (NOPERM)'],
  ]
  it.for(refusals)('exits non-zero before listening on %s, with one line naming the variable and no secret', async ([, env, line], { expect }) => {
    const run = await runGateway(env())
    expect(run.listening, run.stdout + run.stderr).toBe(false)
    expect(run.code).not.toBe(0)
    expect(stderrLines(run.stderr)).toEqual([`bff-gateway failed to start: ${line()}`])
    for (const secret of [GATEWAY_PASSWORD, WRONG_PASSWORD]) expect(run.stdout + run.stderr).not.toContain(secret)
  })

  it('starts and listens while Redis does not answer, /readyz naming the store', async ({ expect }) => {
    const run = await runGateway({ REDIS_URL: `redis://127.0.0.1:${REFUSED_PORT}` }, async (adminUrl) => {
      const ready = await fetch(`${adminUrl}/readyz`)
      expect(ready.status).toBe(503)
      expect(await ready.json()).toMatchObject({ checks: { sessionStore: 'unavailable' } })
    })
    expect(run.listening, run.stdout + run.stderr).toBe(true)
  })
})

/** Node's own warnings (experimental features and the like) are not the gateway's lines. */
const stderrLines = (stderr: string) => stderr.trim().split('\n').filter(line => line !== '' && !/^\(node:\d+\)|^npm warn/.test(line))

interface GatewayRun { code: number | null, stdout: string, stderr: string, listening: boolean }

/**
 * Runs `node gateway/server.ts` until it exits, or until it listens: then
 * `whileListening` runs against its admin listener and the process is stopped.
 */
async function runGateway (redisEnv: Record<string, string>, whileListening?: (adminUrl: string) => Promise<void>): Promise<GatewayRun> {
  const [port, adminPort] = [await freePort(), await freePort()]
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      ...gatewayEnvWithoutRedis(),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      LOG_LEVEL: 'warn',
      ...redisEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  // 'close', not 'exit': by then everything the process wrote has been read.
  const exited = once(child, 'close')
  const listening = new Promise<boolean>((resolve) => {
    child.stdout.on('data', () => { if (stdout.includes('admin listener on')) resolve(true) })
    child.once('close', () => resolve(stdout.includes('admin listener on')))
  })
  const timeout = setTimeout(() => child.kill('SIGKILL'), 30_000)
  try {
    if (await listening) {
      await whileListening?.(`http://127.0.0.1:${adminPort}`)
      child.kill('SIGTERM')
      await exited
      return { code: child.exitCode, stdout, stderr, listening: true }
    }
    return { code: child.exitCode, stdout, stderr, listening: false }
  } finally {
    clearTimeout(timeout)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}
