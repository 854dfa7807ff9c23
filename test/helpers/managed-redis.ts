/**
 * What the managed-Redis tests share: the ACL users a managed Redis gives the
 * gateway (one with the rights it needs, one short of the script commands),
 * the start-up check run as the gateway runs it, a signed-in round trip
 * through the whole product, and which server ports the gateway's user is
 * connected to (from CLIENT LIST), to show it used TLS.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import type { Redis } from 'ioredis'
import { loadConfig } from '../../gateway/config.js'
import { createRedisConnection } from '../../gateway/session/redis-client.js'
import { checkRedisAtStart, type RedisAtStart } from '../../gateway/session/redis-start-check.js'
import { REFUSED_PORT } from './free-port.js'
import { TEST_ADMIN_TOKEN, TEST_SESSION_SECRET } from './gateway.js'
import { signIn } from './sign-in.js'
import type { Stack } from './stack.js'

export const GATEWAY_USER = 'bff'
export const GATEWAY_PASSWORD = 'bff-password-0f3a9c'
export const USER_WITHOUT_SCRIPTS = 'bff-no-scripts'

/** `users` for the Redis helpers: the gateway's user, and one that may not run EVALSHA or EVAL. */
export const MANAGED_USERS = [
  `${GATEWAY_USER} on >${GATEWAY_PASSWORD} ~* &* +@all`,
  `${USER_WITHOUT_SCRIPTS} on >${GATEWAY_PASSWORD} ~* &* +@all -evalsha -eval`,
]

/**
 * The `ACL SETUSER` arguments docs/operations.md recommends for the gateway's user, for `user`
 * with `password`: tests hold the documentation to its word.
 */
export async function documentedAclRule (user: string, password: string): Promise<string[]> {
  const operations = await readFile(new URL('../../docs/operations.md', import.meta.url), 'utf8')
  const line = /^ACL SETUSER bff (.+)$/m.exec(operations)?.[1]
  if (!line) throw new Error('docs/operations.md recommends no ACL SETUSER bff rule')
  return [user, ...line.split(' ').map(word => word === '>PASSWORD' ? `>${password}` : word)]
}

/** Signs in through the IdP, calls the API through the gateway, reads /bff/user, logs out. */
export async function expectSignedInRoundTrip (stack: Stack): Promise<void> {
  const user = await signIn(stack.publicUrl)
  const orders = await fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })
  expect(orders.status).toBe(200)
  expect(await orders.json()).toMatchObject({ user: 'alice' })
  const me = await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })
  expect(me.status).toBe(200)
  const logout = await fetch(`${stack.publicUrl}/bff/logout`, {
    method: 'POST', headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken },
  })
  expect(logout.status).toBe(200)
  expect((await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status).toBe(401)
}

/** The server-side ports of the connections `user` holds on the server `admin` is connected to. */
export async function portsUsedBy (admin: Redis, user: string): Promise<number[]> {
  const list = String(await admin.call('CLIENT', 'LIST'))
  return list.split('\n').filter(Boolean)
    .map(line => Object.fromEntries(line.trim().split(' ').map(field => field.split('=', 2) as [string, string])))
    .filter(client => client.user === user)
    .map(client => Number(client.laddr?.split(':').at(-1)))
}

/** Every variable a gateway needs but Redis's; its identity provider is never reached at start. */
export function gatewayEnvWithoutRedis (): Record<string, string> {
  return {
    PUBLIC_URL: 'http://127.0.0.1:3000',
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SESSION_SECRET: TEST_SESSION_SECRET,
    OIDC_ISSUER: `http://127.0.0.1:${REFUSED_PORT}`,
    OIDC_CLIENT_ID: 'bff',
    OIDC_CLIENT_SECRET: 'client-secret',
    ROUTES_FILE: fileURLToPath(new URL('../fixtures/routes.json', import.meta.url)),
  }
}

/** The start-up check for these Redis variables, read and connected as the gateway does it. */
export async function checkAtStart (redisEnv: Record<string, string>, timeoutMs = 5000): Promise<RedisAtStart> {
  const { redis } = loadConfig({ ...gatewayEnvWithoutRedis(), ...redisEnv })
  if (!redis) throw new Error('no Redis configured')
  const connection = createRedisConnection(redis)
  connection.on('error', () => {})
  try {
    return await checkRedisAtStart(connection, redis, timeoutMs)
  } finally {
    connection.disconnect()
  }
}
