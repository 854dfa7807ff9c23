/**
 * `npm run bench:cache-memory`: what a cached session costs the heap, beside
 * what the cache estimates (`SESSION_CACHE_MEMORY` counts the estimate).
 *
 * One real session (a real login through the mock IdP, read back from Redis
 * and opened with its cookie's key) is the template. For each shape below the
 * cache is filled with BENCH_CACHE_SESSIONS sessions built as the session
 * manager builds one on a cache miss (the secrets JSON-parsed from their
 * unsealed text, the meta from its stored JSON, the key from a verified
 * cookie), every string unique, and the growth of the heap (after full
 * collections) is divided by the count. Needs `--expose-gc`.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { startStack } from '../test/helpers/stack.js'
import { signIn } from '../test/helpers/sign-in.js'
import { TEST_SESSION_SECRET } from '../test/helpers/gateway.js'
import { createSessionCache } from '../gateway/session/session-cache.js'
import { createSessionCrypto } from '../gateway/session/session-crypto.js'
import { decodeSessionCookie, encodeSessionCookie, newSessionCookieValue } from '../gateway/session/session-cookie.js'
import type { ActiveSession, SessionSecrets } from '../gateway/session/active-session.js'
import type { SessionMeta } from '../gateway/session/store.js'

const COUNT = Number(process.env.BENCH_CACHE_SESSIONS ?? 20_000)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) {
  process.stderr.write('run with node --expose-gc (npm run bench:cache-memory does)\n')
  process.exit(1)
}

const crypto = createSessionCrypto([TEST_SESSION_SECRET])

/** The secrets and meta of one real session, as the gateway stored them after a real login. */
async function realSession (): Promise<{ secrets: SessionSecrets, metaText: string }> {
  const stack = await startStack()
  const redis = new Redis(stack.redis!.url)
  try {
    const user = await signIn(stack.publicUrl)
    const raw = user.cookie.split('; ').map(pair => pair.split('=')).find(([name]) => name?.endsWith('bff'))?.[1]
    const cookie = decodeSessionCookie(raw && decodeURIComponent(raw), crypto)
    if (!cookie) throw new Error('no session cookie after login')
    const fields = await redis.hgetall(`bff:{s:${cookie.handle}}`)
    const secrets = JSON.parse(crypto.unseal(fields.sealed!, cookie.key, cookie.handle)) as SessionSecrets
    return { secrets, metaText: fields.meta! }
  } finally {
    redis.disconnect()
    await stack.close()
  }
}

// Every session's strings its own, as each session's JSON.parse makes them: the last characters
// of each long string replaced by the session's number, lengths unchanged.
function uniqueText (json: string, n: number): string {
  const tag = n.toString(36).padStart(6, '0')
  return JSON.stringify(JSON.parse(json, (_key, item: unknown) =>
    typeof item === 'string' && item.length >= 12 ? item.slice(0, -6) + tag : item))
}

const jwtLike = (bytes: number) => randomBytes(bytes).toString('base64url')

/**
 * Shapes a session takes: as logged in, with two narrowed APIs and a DPoP key, with an ID token of
 * the mock's size (as sessions kept before it was dropped), with non-Latin-1 claims.
 */
function shapes (template: SessionSecrets): Record<string, SessionSecrets> {
  const hour = Date.now() + 3_600_000
  const withIdToken: SessionSecrets & { idToken: string } = { ...template, idToken: jwtLike(820) }
  return {
    'as logged in (mock IdP: access and refresh token)': template,
    'plus two narrowed APIs and a DPoP key': {
      ...template,
      audiences: ['https://orders.example', 'https://billing.example'],
      apiTokens: {
        'https://orders.example': { token: jwtLike(template.accessToken.length * 3 / 4), expiresAt: hour, dpop: true },
        'https://billing.example': { token: jwtLike(template.accessToken.length * 3 / 4), expiresAt: hour },
      },
      dpopKey: { kty: 'EC', crv: 'P-256', x: jwtLike(32), y: jwtLike(32), d: jwtLike(32) },
    },
    'with an ID token (as kept before)': withIdToken,
    'with non-Latin-1 claims': { ...template, claims: { ...template.claims, name: 'Łukasz Żółć-Wiśniewski', family_name: 'Żółć-Wiśniewski' } },
  }
}

function usage (): { heap: number, buffers: number } {
  gc!()
  gc!()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return { heap: heapUsed, buffers: arrayBuffers }
}

function measure (secrets: SessionSecrets, metaText: string): { heap: number, buffers: number, estimate: number } {
  const cache = createSessionCache({ ttlMs: 3_600_000 })
  cache.trust()
  const secretsText = JSON.stringify(secrets)
  const before = usage()
  for (let n = 0; n < COUNT; n++) {
    const cookie = decodeSessionCookie(encodeSessionCookie(newSessionCookieValue(), crypto), crypto)!
    const meta = JSON.parse(metaText.replace(/"sub":"[^"]*"/, `"sub":"user-${n}"`)) as SessionMeta
    const at = Date.now()
    const session: ActiveSession = {
      handle: cookie.handle,
      version: 1,
      meta,
      lastSeenAt: at,
      idleExpiresAt: at + 1_800_000,
      secrets: JSON.parse(uniqueText(secretsText, n)) as SessionSecrets,
      cookie,
    }
    cache.set(session, cache.generation)
  }
  const after = usage()
  const result = { heap: (after.heap - before.heap) / COUNT, buffers: (after.buffers - before.buffers) / COUNT, estimate: cache.stats.bytes / COUNT }
  cache.distrust()
  return result
}

const { secrets, metaText } = await realSession()
const lines = [
  `${COUNT.toLocaleString('en')} sessions per shape, Node.js ${process.version}`,
  '',
  '| session | its secrets as JSON | heap per session | array buffers per session | estimated | estimate / measured |',
  '|---|---:|---:|---:|---:|---:|',
]
for (const [name, shape] of Object.entries(shapes(secrets))) {
  const measured = measure(shape, metaText)
  const total = measured.heap + measured.buffers
  lines.push(`| ${name} | ${JSON.stringify(shape).length} B | ${Math.round(measured.heap)} B | ${Math.round(measured.buffers)} B | ${Math.round(measured.estimate)} B | ${(measured.estimate / total).toFixed(2)} |`)
}
process.stdout.write(`${lines.join('\n')}\n`)
