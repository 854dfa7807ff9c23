/**
 * `npm run bench:memory`: what sessions cost Redis. One real session is made
 * the way a user's is: a login through the mock IdP from a desktop browser,
 * then a request to each of two APIs whose routes narrow the user's token to
 * their own audience (one DPoP-bound), so it holds its own access and refresh
 * tokens, two narrowed tokens and a DPoP key, sealed. It is measured with
 * MEMORY USAGE, then copied to 100 000 sessions (each with its own user-index
 * entry) and the growth of Redis's used_memory is reported. Also the CPU a
 * request that misses the session cache spends opening it (derive the key,
 * decrypt, inflate, parse): the best of 30 rounds of 2 000.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { createSessionCrypto } from '../gateway/session/session-crypto.js'
import { decodeSessionCookie } from '../gateway/session/session-cookie.js'
import { TEST_SESSION_SECRET } from '../test/helpers/gateway.js'
import { signInWithNarrowedTokens, startNarrowedStack } from '../test/helpers/narrowed-session.js'

const COUNT = Number(process.env.BENCH_MEMORY_SESSIONS ?? 100_000)
const BATCH = 1000

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
const kib = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/** Microseconds per call of `open`, the best of 30 rounds. */
function microsecondsPerOpen (open: () => unknown): number {
  let best = Infinity
  for (let round = 0; round < 30; round++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < 2000; i++) open()
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 2000 / 1000)
  }
  return best
}

const stack = await startNarrowedStack()
const redis = new Redis(stack.redis!.url)
try {
  const cookieHeader = await signInWithNarrowedTokens(stack)
  const [key] = await redis.keys('bff:{s:*}')
  // As bytes: the sealed field is binary.
  const fields = await redis.hgetallBuffer(key!)
  const metaText = fields.meta!.toString()
  const meta = JSON.parse(metaText) as { absoluteExpiresAt: number }
  const one = Number(await redis.memory('USAGE', key!, 'SAMPLES', '0'))
  const crypto = createSessionCrypto([TEST_SESSION_SECRET])
  const cookie = decodeSessionCookie(decodeURIComponent(/(?:^|; )bff=([^;]+)/.exec(cookieHeader)![1]!), crypto)!
  const openMicros = microsecondsPerOpen(() => JSON.parse(crypto.unseal(fields.sealed!, cookie.key, cookie.handle)))

  const before = await usedMemory(redis)
  for (let done = 0; done < COUNT; done += BATCH) {
    const pipeline = redis.pipeline()
    for (let i = 0; i < BATCH && done + i < COUNT; i++) {
      const handle = randomBytes(24).toString('base64url')
      const sub = `user-${done + i}`
      pipeline.hset(`bff:{s:${handle}}`, { ...fields, meta: metaText.replace(/"sub":"[^"]*"/, `"sub":"${sub}"`) })
      pipeline.pexpire(`bff:{s:${handle}}`, 3_600_000)
      pipeline.zadd(`bff:{u:${sub}}:sessions`, meta.absoluteExpiresAt, handle)
    }
    await pipeline.exec()
  }
  const after = await usedMemory(redis)
  const lines = [
    '| measure | value |',
    '|---|---:|',
    `| one session hash (MEMORY USAGE) | ${one} B (${kib(one)}) |`,
    `| of which the sealed tokens/claims field | ${fields.sealed!.length} B |`,
    `| of which the clear meta field | ${fields.meta!.length} B |`,
    `| opening it (derive the key, decrypt, inflate, parse) | ${openMicros.toFixed(1)} µs |`,
    `| ${COUNT.toLocaleString('en')} sessions with their user indexes (used_memory growth) | ${mib(after - before)} |`,
    `| per session, all in | ${kib((after - before) / COUNT)} |`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
} finally {
  redis.disconnect()
  await stack.close()
}
