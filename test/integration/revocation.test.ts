/**
 * Revocation that sticks: operators, the identity provider's back-channel
 * logout, a user's own devices, and session binding — across two gateway
 * instances on one real Redis, against the real oidc-provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { SignJWT, generateKeyPair } from 'jose'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { startLogin } from '../helpers/login-flow.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { TEST_ADMIN_TOKEN, TEST_CLIENT_ID } from '../helpers/gateway.js'
import { runAdminCommand } from '../../gateway/admin/admin-commands.js'
import { keyFor } from '../../gateway/session/keys.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

let stack: Stack
let a: string
let b: string
beforeAll(async () => {
  stack = await startStack({ instances: 2 })
  a = stack.gateways[0]!.url
  b = stack.gateways[1]!.url
})
afterAll(async () => { await stack?.close() })

const admin = (path: string, init: RequestInit = {}, token = TEST_ADMIN_TOKEN) =>
  fetch(`${stack.gateways[0]!.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } })

const userStatus = async (url: string, user: SignedInUser) =>
  (await fetch(`${url}/bff/user`, { headers: { cookie: user.cookie } })).status

async function handles (user: SignedInUser, url = a): Promise<Array<{ id: string, current: boolean }>> {
  const response = await fetch(`${url}/bff/sessions`, { headers: { cookie: user.cookie } })
  return ((await response.json()) as { sessions: Array<{ id: string, current: boolean }> }).sessions
}

const currentId = async (user: SignedInUser) => (await handles(user)).find(s => s.current)!.id

async function metric (name: string): Promise<number> {
  const text = await (await admin('/metrics')).text()
  return text.split('\n').filter(l => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
}

describe('admin listener', () => {
  it.each([
    ['no token', undefined],
    ['a wrong token', 'Bearer not-the-admin-token-0123456789abcdef'],
    ['a token in the wrong scheme', `Basic ${TEST_ADMIN_TOKEN}`],
  ])('answers 401 to /admin/* with %s', async (_case, authorization) => {
    for (const [method, path] of [['GET', '/admin/users/alice/sessions'], ['DELETE', '/admin/sessions?all=true'], ['GET', '/metrics']] as const) {
      const response = await fetch(`${stack.gateways[0]!.adminUrl}${path}`, { method, headers: authorization ? { authorization } : {} })
      expect(response.status, `${method} ${path}`).toBe(401)
      expect(await response.json()).toMatchObject({ error: 'unauthenticated' })
    }
  })

  it('is not served on the public listener', async () => {
    for (const path of ['/admin/users/alice/sessions', '/metrics', '/readyz']) {
      const response = await fetch(`${a}${path}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
      expect(response.status, path).toBe(404)
    }
  })

  it('lists a user\'s sessions by public handle, never by cookie value', async () => {
    const user = await signIn(a, 'bob')
    const response = await admin('/admin/users/bob/sessions')
    expect(response.status).toBe(200)
    const { sessions } = await response.json() as { sessions: Array<Record<string, string>> }
    expect(sessions.length).toBeGreaterThanOrEqual(1)
    expect(sessions[0]).toEqual({ id: expect.any(String), createdAt: expect.any(String), lastSeenAt: expect.any(String), ip: '127.0.0.1', userAgent: expect.any(String) })
    const cookieValue = user.cookie.split('=')[1]!
    for (const s of sessions) {
      expect(cookieValue).not.toContain(s.id!)
      // A handle can never be used as a cookie.
      expect((await fetch(`${a}/bff/user`, { headers: { cookie: `bff=${s.id!}` } })).status).toBe(401)
    }
  })

  it('revokes one session on instance A; the next request on instance B is 401 at once', async () => {
    const user = await signIn(a)
    expect(await userStatus(b, user)).toBe(200)
    const id = await currentId(user)
    const response = await admin(`/admin/sessions/${id}`, { method: 'DELETE' })
    expect(await response.json()).toEqual({ revoked: 1 })
    stack.api.clear()
    expect(await userStatus(b, user)).toBe(401)
    expect((await fetch(`${b}/api/orders`, { headers: { cookie: user.cookie } })).status).toBe(401)
    expect(stack.api.received).toEqual([])
    expect((await admin(`/admin/sessions/${id}`, { method: 'DELETE' })).status).toBe(404)
  })

  it('revokes every session of a user with three devices; revokes their refresh tokens at the IdP as each returns', async () => {
    const devices = [await signIn(a), await signIn(a), await signIn(a)]
    const grantsBefore = stack.idp.grantsOf('alice').length
    const response = await admin('/admin/users/alice/sessions', { method: 'DELETE' })
    expect((await response.json() as { revoked: number }).revoked).toBeGreaterThanOrEqual(3)
    for (const [i, device] of devices.entries()) expect(await userStatus(i % 2 ? a : b, device)).toBe(401)
    expect(stack.idp.grantsOf('alice').length).toBeLessThanOrEqual(grantsBefore - 3)
    expect((await (await admin('/admin/users/alice/sessions')).json() as { sessions: unknown[] }).sessions).toEqual([])
  })

  it('revoke-all also ends a session the per-user index lost (the epoch), at its next activity touch', async () => {
    const user = await signIn(a, 'bob')
    const redis = new Redis(stack.redis!.url)
    try {
      // A request reads the session's record alone; the user's epoch is looked at when the
      // session's activity is next recorded (a tenth of the idle window after the last, at most a
      // minute): the record is aged so that this is the next request.
      await redis.hset(keyFor.session(await currentId(user)), 'seen', String(Date.now() - 2 * 60_000))
      await redis.del('bff:{u:bob}:sessions')
    } finally {
      redis.disconnect()
    }
    await admin('/admin/users/bob/sessions', { method: 'DELETE' })
    expect(await userStatus(b, user)).toBe(401)
    // A login after the revocation is a fresh session at the new epoch.
    const again = await signIn(a, 'bob')
    expect(await userStatus(b, again)).toBe(200)
  })

  it('flushes every session of every user (needs ?all=true)', async () => {
    const alice = await signIn(a)
    const bob = await signIn(a, 'bob')
    expect((await admin('/admin/sessions', { method: 'DELETE' })).status).toBe(400)
    const response = await admin('/admin/sessions?all=true', { method: 'DELETE' })
    expect((await response.json() as { revoked: number }).revoked).toBeGreaterThanOrEqual(2)
    expect(await userStatus(a, alice)).toBe(401)
    expect(await userStatus(b, bob)).toBe(401)
  })

  it('after an operator revoke, that browser\'s next /bff/login carries prompt=login', async () => {
    const user = await signIn(a)
    const plain = new URL((await startLogin(new HttpBrowser(), a)).authorizationUrl)
    expect(plain.searchParams.get('prompt')).toBeNull()
    await admin(`/admin/sessions/${await currentId(user)}`, { method: 'DELETE' })
    const next = new URL((await startLogin(user.browser, a)).authorizationUrl)
    expect(next.searchParams.get('prompt')).toBe('login')
  })

  it('counts revocations in the metrics by reason', async () => {
    const before = await metric('bff_audit_events_total{event="session_revoked",reason="operator"}')
    const user = await signIn(a)
    await admin(`/admin/sessions/${await currentId(user)}`, { method: 'DELETE' })
    expect(await metric('bff_audit_events_total{event="session_revoked",reason="operator"}')).toBe(before + 1)
  })
})

describe('admin CLI (npm run admin)', () => {
  const env = () => ({ ...process.env, ADMIN_URL: stack.gateways[0]!.adminUrl, ADMIN_TOKEN: TEST_ADMIN_TOKEN })

  it('lists, logs out one session, logs out a user, and flushes with confirmation', async () => {
    const user = await signIn(a, 'bob')
    const id = await currentId(user)
    const lines: string[] = []
    const print = (line: string) => lines.push(line)
    const saved = { ADMIN_URL: process.env.ADMIN_URL, ADMIN_TOKEN: process.env.ADMIN_TOKEN }
    Object.assign(process.env, { ADMIN_URL: stack.gateways[0]!.adminUrl, ADMIN_TOKEN: TEST_ADMIN_TOKEN })
    try {
      await runAdminCommand(['sessions', 'list', '--user', 'bob'], print)
      expect(lines.at(-1)).toMatch(/^ID\s+CREATED\s+LAST SEEN\s+IP\s+USER AGENT/)
      expect(lines.at(-1)).toContain(id)
      await runAdminCommand(['logout', '--session', id], print)
      expect(await userStatus(a, user)).toBe(401)
      await signIn(a, 'bob')
      await runAdminCommand(['logout', '--user', 'bob'], print)
      expect(lines.at(-1)).toMatch(/^ended [1-9]\d* session\(s\) of bob/)
      await runAdminCommand(['sessions', 'list', '--user', 'bob'], print)
      expect(lines.at(-1)).toBe('no sessions for bob')
      await expect(runAdminCommand(['flush', '--all'], print)).rejects.toThrow(/--yes/)
      await runAdminCommand(['flush', '--all', '--yes'], print)
      expect(lines.at(-1)).toMatch(/^ended \d+ session\(s\)$/)
    } finally {
      Object.assign(process.env, saved)
      for (const [k, v] of Object.entries(saved)) if (v === undefined) Reflect.deleteProperty(process.env, k)
    }
  })

  it('runs as a process: prints a table, exits non-zero on errors', async () => {
    // Asynchronous on purpose: the admin listener answering it lives in this very process.
    const run = (args: string[], extra: Record<string, string> = {}) => new Promise<{ status: number, stdout: string, stderr: string }>(resolve => {
      execFile(process.execPath, ['--import', 'tsx', 'gateway/admin/cli.ts', ...args], { cwd: ROOT, env: { ...env(), ...extra }, timeout: 30_000 },
        (error, stdout, stderr) => resolve({ status: error ? Number(error.code ?? -1) : 0, stdout, stderr }))
    })
    const ok = await run(['sessions', 'list', '--user', 'nobody'])
    expect(ok.status).toBe(0)
    expect(ok.stdout).toContain('no sessions for nobody')
    const wrongToken = await run(['sessions', 'list', '--user', 'alice'], { ADMIN_TOKEN: 'wrong-token-0123456789-0123456789-abc' })
    expect(wrongToken.status).toBe(1)
    expect(wrongToken.stderr).toContain('401')
    const usage = await run(['frobnicate'])
    expect(usage.status).toBe(2)
    expect(usage.stderr).toContain('usage:')
  })
})

describe('POST /bff/backchannel-logout', () => {
  it('ends the session the real IdP names when it ends the user\'s IdP session, on every instance', async () => {
    const user = await signIn(a)
    const deliveries = await stack.idp.logoutUser('alice')
    expect(deliveries.length).toBeGreaterThanOrEqual(1)
    expect(deliveries.every(d => d.status === 200)).toBe(true)
    expect(deliveries[0]!.sid).toBeTruthy()
    expect(await userStatus(b, user)).toBe(401)
    expect(await userStatus(a, user)).toBe(401)
  })

  it('refuses a replayed logout token', async () => {
    await signIn(a)
    const [delivery] = await stack.idp.logoutUser('alice')
    const replay = await fetch(`${a}/bff/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: delivery!.logoutToken }),
    })
    expect(replay.status).toBe(400)
    expect(await replay.json()).toMatchObject({ error: 'invalid_logout_token' })
  })

  describe('refuses forged or malformed logout tokens (400) and ends nothing', () => {
    const event = { 'http://schemas.openid.net/event/backchannel-logout': {} }
    const forge = async (claims: Record<string, unknown>, header: Record<string, unknown> = { typ: 'logout+jwt' }) => {
      const { privateKey } = await generateKeyPair('RS256')
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', ...header }).sign(privateKey)
    }
    const post = (body: string) => fetch(`${a}/bff/backchannel-logout`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
    })

    it.each([
      ['missing logout_token', () => Promise.resolve('')],
      ['not a JWT', () => Promise.resolve('logout_token=not-a-jwt')],
      ['signed by someone else', async () => `logout_token=${await forge({ iss: stack.idp.issuer, aud: TEST_CLIENT_ID, iat: Math.floor(Date.now() / 1000), jti: 'x1', sub: 'alice', events: event })}`],
      ['an unsigned (alg none) token', () => {
        const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
        const token = `${encode({ alg: 'none', typ: 'logout+jwt' })}.${encode({ iss: stack.idp.issuer, aud: TEST_CLIENT_ID, iat: Math.floor(Date.now() / 1000), jti: 'x2', sub: 'alice', events: event })}.`
        return Promise.resolve(`logout_token=${token}`)
      }],
    ])('%s', async (_case, body) => {
      const user = await signIn(a)
      const response = await post(await body())
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ error: 'invalid_logout_token' })
      expect(await userStatus(a, user)).toBe(200)
    })
  })
})

describe('self-service devices', () => {
  it('lists my devices with the current one marked, and signs out one other device', async () => {
    const laptop = await signIn(a, 'bob')
    const phone = await signIn(a, 'bob')
    const list = await handles(laptop)
    expect(list.filter(s => s.current)).toHaveLength(1)
    const phoneId = await currentId(phone)
    expect(list.map(s => s.id)).toContain(phoneId)
    // Needs the CSRF header.
    expect((await fetch(`${a}/bff/sessions/${phoneId}`, { method: 'DELETE', headers: { cookie: laptop.cookie } })).status).toBe(403)
    const response = await fetch(`${a}/bff/sessions/${phoneId}`, { method: 'DELETE', headers: { cookie: laptop.cookie, 'x-csrf-token': laptop.csrfToken } })
    expect(await response.json()).toEqual({ revoked: 1 })
    expect(await userStatus(b, phone)).toBe(401)
    expect(await userStatus(a, laptop)).toBe(200)
  })

  it('signs out every other device with ?others=true, and refuses to end the current one this way', async () => {
    const laptop = await signIn(a, 'bob')
    const phone = await signIn(a, 'bob')
    const tablet = await signIn(a, 'bob')
    const self = await fetch(`${a}/bff/sessions/${await currentId(laptop)}`, { method: 'DELETE', headers: { cookie: laptop.cookie, 'x-csrf-token': laptop.csrfToken } })
    expect(self.status).toBe(400)
    const response = await fetch(`${a}/bff/sessions?others=true`, { method: 'DELETE', headers: { cookie: laptop.cookie, 'x-csrf-token': laptop.csrfToken } })
    expect((await response.json() as { revoked: number }).revoked).toBeGreaterThanOrEqual(2)
    expect(await userStatus(a, phone)).toBe(401)
    expect(await userStatus(b, tablet)).toBe(401)
    expect(await userStatus(a, laptop)).toBe(200)
    expect((await handles(laptop)).map(s => s.current)).toEqual([true])
  })

  it('cannot touch another user\'s session (404, still alive)', async () => {
    const alice = await signIn(a)
    const bob = await signIn(a, 'bob')
    const bobId = await currentId(bob)
    const response = await fetch(`${a}/bff/sessions/${bobId}`, { method: 'DELETE', headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrfToken } })
    expect(response.status).toBe(404)
    expect(await userStatus(a, bob)).toBe(200)
  })

  it('needs a session', async () => {
    expect((await fetch(`${a}/bff/sessions`)).status).toBe(401)
  })
})

describe('session binding (SESSION_BINDING)', () => {
  async function bindingStack (mode: string) {
    return startStack({ store: 'memory', gatewayEnv: { SESSION_BINDING: mode } })
  }
  const fromOtherBrowser = (url: string, user: SignedInUser) =>
    fetch(`${url}/bff/user`, { headers: { cookie: user.cookie, 'user-agent': 'EvilBrowser/1.0' } })
  const fromOwnBrowser = (url: string, user: SignedInUser) =>
    fetch(`${url}/bff/user`, { headers: { cookie: user.cookie, 'user-agent': user.userAgent } })

  it.each([
    ['off', 200, 200, 0],
    ['log', 200, 200, 1],
    ['revoke', 401, 401, 1],
  ])('%s: another User-Agent gets %i, the original browser then gets %i; %i audit event(s)', async (mode, stolen, original, events) => {
    const s = await bindingStack(mode)
    try {
      const user = await signIn(s.publicUrl)
      expect((await fromOwnBrowser(s.publicUrl, user)).status).toBe(200)
      expect((await fromOtherBrowser(s.publicUrl, user)).status).toBe(stolen)
      expect((await fromOwnBrowser(s.publicUrl, user)).status).toBe(original)
      const text = await (await fetch(`${s.gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()
      const count = text.split('\n').filter(l => l.startsWith('bff_audit_events_total{event="binding_mismatch"')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)
      expect(count).toBe(events)
    } finally {
      await s.close()
    }
  })
})
