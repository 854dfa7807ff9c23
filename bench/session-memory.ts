/**
 * `npm run bench:memory`: what sessions cost Redis. One real session (a real
 * login through the mock IdP: access, refresh and ID tokens, encrypted) is
 * measured with MEMORY USAGE, then copied to 100 000 sessions (each with its
 * own user-index entry) and the growth of Redis's used_memory is reported.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { startStack } from '../test/helpers/stack.js'
import { signIn } from '../test/helpers/sign-in.js'

const COUNT = Number(process.env.BENCH_SESSIONS ?? 100_000)
const BATCH = 1000

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
const kib = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

const stack = await startStack()
const redis = new Redis(stack.redis!.url)
try {
  await signIn(stack.publicUrl)
  const [key] = await redis.keys('bff:{s:*}')
  const fields = await redis.hgetall(key!)
  const meta = JSON.parse(fields.meta!) as { absoluteExpiresAt: number }
  const one = Number(await redis.memory('USAGE', key!, 'SAMPLES', '0'))
  const sealed = fields.sealed!.length

  const before = await usedMemory(redis)
  for (let done = 0; done < COUNT; done += BATCH) {
    const pipeline = redis.pipeline()
    for (let i = 0; i < BATCH && done + i < COUNT; i++) {
      const handle = randomBytes(24).toString('base64url')
      const sub = `user-${done + i}`
      pipeline.hset(`bff:{s:${handle}}`, { ...fields, meta: fields.meta!.replace(/"sub":"[^"]*"/, `"sub":"${sub}"`) })
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
    `| of which the encrypted tokens/claims field | ${sealed} B |`,
    `| ${COUNT.toLocaleString('en')} sessions with their user indexes (used_memory growth) | ${mib(after - before)} |`,
    `| per session, all in | ${kib((after - before) / COUNT)} |`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
} finally {
  redis.disconnect()
  await stack.close()
}
