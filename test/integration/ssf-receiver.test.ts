/**
 * The Shared Signals receiver, `POST /bff/ssf/events` (issue 18): Security
 * Event Tokens signed by a transmitter whose keys the test serves from a JWKS
 * endpoint of its own (SSF_ISSUER is not the IdP), pushed as RFC 8935 says.
 * Each CAEP and RISC event the gateway acts on, with its effect on real
 * sessions (real oidc-provider IdP, real Redis); each refusal, with its RFC
 * 8935 code and no effect; the push token.
 *
 * ssf-idp-transmitter.test.ts has the IdP itself as the transmitter (SSF_ISSUER = OIDC_ISSUER,
 * its keys found through discovery), with the changes at the IdP that its events report.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { captureLogLines } from '../helpers/log-lines.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

const SSF_ISSUER = 'https://risk-engine.example'
const PUSH_TOKEN = 'ssf-push-token-0123456789-abcdefghijklmn'
const KID = 'ssf-key-1'
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

/** Every line both listeners log, parsed. */
const { lines: logLines, stream: logStream } = captureLogLines()

let jwksServer: Server
let signingKey: CryptoKey
let rogueKey: CryptoKey
let stack: Stack
let url: string
let redis: Redis

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true })
  signingKey = pair.privateKey
  rogueKey = (await generateKeyPair('ES256')).privateKey
  const jwks = JSON.stringify({ keys: [{ ...await exportJWK(pair.publicKey), kid: KID, alg: 'ES256', use: 'sig' }] })
  jwksServer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(jwks)
  })
  await new Promise<void>(resolve => jwksServer.listen(0, '127.0.0.1', resolve))
  stack = await startStack({
    deps: { logStream },
    gatewayEnv: {
      LOG_LEVEL: 'info',
      SSF_ISSUER,
      SSF_JWKS_URI: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`,
      SSF_PUSH_TOKEN: PUSH_TOKEN,
    },
  })
  url = stack.publicUrl
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
  await new Promise(resolve => jwksServer?.close(resolve))
})

const user = (sub: string) => ({ format: 'iss_sub', iss: stack.idp.issuer, sub })

interface SetOptions {
  subject?: unknown
  /** Put the subject inside the event (earlier SSF drafts) instead of `sub_id`. */
  subjectInEvent?: boolean
  iss?: string
  aud?: string
  iat?: number
  jti?: string
  key?: CryptoKey
  kid?: string
  typ?: string
}

/** A Security Event Token carrying one event, signed by the transmitter (or as `options` say). */
async function securityEvent (type: string, options: SetOptions = {}): Promise<string> {
  const subject = options.subject ?? user('alice')
  const event = options.subjectInEvent ? { subject } : {}
  const payload = { events: { [type]: event }, ...(options.subjectInEvent ? {} : { sub_id: subject }) }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? KID, typ: options.typ ?? 'secevent+jwt' })
    .setIssuer(options.iss ?? SSF_ISSUER)
    .setAudience(options.aud ?? url)
    .setIssuedAt(options.iat ?? Math.floor(Date.now() / 1000))
    .setJti(options.jti ?? randomUUID())
    .sign(options.key ?? signingKey)
}

const push = (body: string, headers: Record<string, string> = {}) => fetch(`${url}/bff/ssf/events`, {
  method: 'POST',
  headers: { 'content-type': 'application/secevent+jwt', authorization: `Bearer ${PUSH_TOKEN}`, ...headers },
  body,
})

async function pushAccepted (token: string): Promise<void> {
  const response = await push(token)
  expect(response.status, await response.clone().text()).toBe(202)
  expect(await response.text()).toBe('')
}

const apiStatus = async (signedIn: SignedInUser, path = '/api/orders') =>
  (await fetch(`${url}${path}`, { headers: { cookie: signedIn.cookie, 'x-csrf-token': signedIn.csrfToken }, method: path.startsWith('/api/admin') ? 'DELETE' : 'GET' })).status

const admin = (path: string, method = 'GET') =>
  fetch(`${stack.gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })

async function currentHandle (signedIn: SignedInUser): Promise<string> {
  const { sessions } = await (await fetch(`${url}/bff/sessions`, { headers: { cookie: signedIn.cookie } })).json() as { sessions: Array<{ id: string, current: boolean }> }
  return sessions.find(s => s.current)!.id
}

async function metric (name: string): Promise<number> {
  const text = await (await admin('/metrics')).text()
  return text.split('\n').filter(l => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
}

describe('POST /bff/ssf/events: the events the gateway acts on', () => {
  it('CAEP session-revoked for a user ends every session of theirs, and is audited with its jti', async () => {
    const laptop = await signIn(url)
    const phone = await signIn(url)
    const bob = await signIn(url, 'bob')
    const jti = randomUUID()
    const from = logLines.length
    await pushAccepted(await securityEvent(`${CAEP}session-revoked`, { jti }))
    expect(await apiStatus(laptop)).toBe(401)
    expect(await apiStatus(phone)).toBe(401)
    expect(await apiStatus(bob)).toBe(200)
    expect(logLines.slice(from).filter(line => line.audit === 'security_event')).toEqual([
      expect.objectContaining({ audit: 'security_event', reason: 'session-revoked', jti, sub: 'alice' }),
    ])
    expect(await metric('bff_security_events_total{type="session-revoked",result="accepted"}')).toBeGreaterThanOrEqual(1)
  })

  it('CAEP session-revoked for one IdP session (a complex subject) ends only the sessions it gave', async () => {
    const first = await signIn(url)
    const second = await signIn(url)
    const meta = JSON.parse((await redis.hget(`bff:{s:${await currentHandle(first)}}`, 'meta'))!) as { sid: string }
    const subject = { format: 'complex', user: user('alice'), session: { format: 'opaque', id: meta.sid } }
    await pushAccepted(await securityEvent(`${CAEP}session-revoked`, { subject }))
    expect(await apiStatus(first)).toBe(401)
    expect(await apiStatus(second)).toBe(200)
  })

  it('takes the subject from the event itself too (earlier SSF drafts)', async () => {
    const signedIn = await signIn(url)
    await pushAccepted(await securityEvent(`${CAEP}session-revoked`, { subjectInEvent: true }))
    expect(await apiStatus(signedIn)).toBe(401)
  })

  it('CAEP credential-change ends all the user\'s sessions, even when it names one IdP session', async () => {
    const first = await signIn(url)
    const second = await signIn(url)
    const meta = JSON.parse((await redis.hget(`bff:{s:${await currentHandle(first)}}`, 'meta'))!) as { sid: string }
    await pushAccepted(await securityEvent(`${CAEP}credential-change`, { subject: { format: 'complex', user: user('alice'), session: { format: 'opaque', id: meta.sid } } }))
    expect(await apiStatus(first)).toBe(401)
    expect(await apiStatus(second)).toBe(401)
  })

  it('CAEP token-claims-change acts as an operator\'s refresh: a role granted applies at the next request, one token call', async () => {
    const signedIn = await signIn(url)
    expect(await apiStatus(signedIn, '/api/admin/users/9')).toBe(403)
    stack.idp.setRoles('alice', ['user', 'admin'])
    try {
      stack.idp.resetCounters()
      await pushAccepted(await securityEvent(`${CAEP}token-claims-change`))
      expect(await apiStatus(signedIn, '/api/admin/users/9')).toBe(200)
      expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    } finally {
      stack.idp.setRoles('alice', ['user'])
    }
  })

  it('CAEP assurance-level-change makes the user\'s sessions forget their acr (and nothing else)', async () => {
    const signedIn = await signIn(url)
    const handle = await currentHandle(signedIn)
    const from = logLines.length
    await pushAccepted(await securityEvent(`${CAEP}assurance-level-change`))
    expect(await redis.hget(`bff:{s:${handle}}`, 'na')).toBe('1')
    expect(logLines.slice(from).some(line => line.audit === 'acr_forgotten' && line.sub === 'alice' && line.reason === 'security_event')).toBe(true)
    expect(await apiStatus(signedIn)).toBe(200)
    expect(await (await fetch(`${url}/bff/user`, { headers: { cookie: signedIn.cookie } })).json()).toMatchObject({ sub: 'alice', acr: null })
  })

  it('RISC account-disabled and account-enabled act as an operator\'s disable and enable', async () => {
    const signedIn = await signIn(url)
    await pushAccepted(await securityEvent(`${RISC}account-disabled`))
    expect(await apiStatus(signedIn)).toBe(401)
    expect(await (await admin('/admin/users/alice')).json()).toEqual({ sub: 'alice', status: 'disabled', sessions: 0 })
    await pushAccepted(await securityEvent(`${RISC}account-enabled`))
    expect(await (await admin('/admin/users/alice')).json()).toMatchObject({ status: 'active' })
    expect(await apiStatus(await signIn(url))).toBe(200)
    expect(await metric('bff_account_status_changes_total{status="disabled",source="security_event"}')).toBe(1)
  })

  it('RISC account-purged disables the account and ends its sessions', async () => {
    const signedIn = await signIn(url)
    try {
      await pushAccepted(await securityEvent(`${RISC}account-purged`))
      expect(await apiStatus(signedIn)).toBe(401)
      expect(await (await admin('/admin/users/alice')).json()).toMatchObject({ status: 'disabled', sessions: 0 })
    } finally {
      await admin('/admin/users/alice/enable', 'POST')
    }
  })

  it('accepts, logs and ignores other event types and subjects it cannot name', async () => {
    const signedIn = await signIn(url)
    const before = await metric('bff_security_events_total{type="other",result="ignored"}')
    await pushAccepted(await securityEvent(`${CAEP}device-compliance-change`))
    await pushAccepted(await securityEvent(`${CAEP}session-revoked`, { subject: { format: 'iss_sub', iss: 'https://another-idp.example', sub: 'alice' } }))
    await pushAccepted(await securityEvent(`${CAEP}session-revoked`, { subject: { format: 'email', email: 'alice@example.com' } }))
    expect(await apiStatus(signedIn)).toBe(200)
    expect(await metric('bff_security_events_total{type="other",result="ignored"}')).toBe(before + 1)
    expect(await metric('bff_security_events_total{type="session-revoked",result="ignored"}')).toBeGreaterThanOrEqual(2)
  })

  it('is server-to-server: exempt from the browser checks (a cross-site fetch site, no CSRF token)', async () => {
    const response = await push(await securityEvent(`${CAEP}device-compliance-change`), { 'sec-fetch-site': 'cross-site', origin: 'https://risk-engine.example' })
    expect(response.status).toBe(202)
  })
})

describe('POST /bff/ssf/events: refusals', () => {
  const refusals: Array<[string, () => Promise<{ body: string, headers?: Record<string, string> }>, string]> = [
    ['a signature by a key the transmitter does not publish', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { key: rogueKey, kid: 'unknown-key' }) }), 'invalid_key'],
    ['a bad signature under the transmitter\'s key id', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { key: rogueKey }) }), 'invalid_key'],
    ['alg: none', async () => {
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const now = Math.floor(Date.now() / 1000)
      return { body: `${part({ alg: 'none', typ: 'secevent+jwt' })}.${part({ iss: SSF_ISSUER, aud: url, iat: now, jti: randomUUID(), sub_id: user('alice'), events: { [`${CAEP}session-revoked`]: {} } })}.` }
    }, 'invalid_key'],
    ['another issuer', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { iss: 'https://impostor.example' }) }), 'invalid_issuer'],
    ['another audience', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { aud: 'https://other-app.example' }) }), 'invalid_audience'],
    ['an iat older than 5 minutes', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { iat: Math.floor(Date.now() / 1000) - 400 }) }), 'invalid_request'],
    ['an iat in the future', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { iat: Math.floor(Date.now() / 1000) + 300 }) }), 'invalid_request'],
    ['a body that is not a JWT', async () => ({ body: '{"events":{}}' }), 'invalid_request'],
    ['an empty body', async () => ({ body: '' }), 'invalid_request'],
    ['the wrong content type', async () => ({ body: await securityEvent(`${CAEP}session-revoked`), headers: { 'content-type': 'application/jwt' } }), 'invalid_request'],
    ['a JWT that says it is something else (typ)', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { typ: 'JWT' }) }), 'invalid_request'],
    ['no subject', async () => ({ body: await securityEvent(`${CAEP}session-revoked`, { subject: 'alice' }) }), 'invalid_request'],
  ]

  it.each(refusals)('refuses %s with 400 and its RFC 8935 code, and nothing happens', async (_case, make, code) => {
    const signedIn = await signIn(url)
    const { body, headers } = await make()
    const before = await metric(`bff_security_events_total{type="none",result="${code}"}`)
    const response = await push(body, headers)
    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({ err: code, description: expect.any(String) })
    expect(await apiStatus(signedIn)).toBe(200)
    expect(await metric(`bff_security_events_total{type="none",result="${code}"}`)).toBe(before + 1)
  })

  it('refuses a replayed jti with 400 invalid_request: the second delivery changes nothing', async () => {
    const jti = randomUUID()
    await pushAccepted(await securityEvent(`${RISC}account-disabled`, { jti, subject: user('bob') }))
    await pushAccepted(await securityEvent(`${RISC}account-enabled`, { subject: user('bob') }))
    const replay = await push(await securityEvent(`${RISC}account-disabled`, { jti, subject: user('bob') }))
    expect(replay.status).toBe(400)
    expect(await replay.json()).toEqual({ err: 'invalid_request', description: expect.stringMatching(/replayed/) })
    expect(await (await admin('/admin/users/bob')).json()).toMatchObject({ status: 'active' })
  })

  it('answers 401 without the push token, or with another, and nothing happens', async () => {
    const signedIn = await signIn(url)
    const token = await securityEvent(`${CAEP}session-revoked`)
    for (const authorization of [undefined, 'Bearer not-the-push-token-0123456789-abcdefgh', `Basic ${PUSH_TOKEN}`]) {
      const response = await fetch(`${url}/bff/ssf/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/secevent+jwt', ...(authorization ? { authorization } : {}) },
        body: token,
      })
      expect(response.status).toBe(401)
      expect(response.headers.get('www-authenticate')).toBe('Bearer')
      expect(await response.json()).toMatchObject({ err: 'authentication_failed' })
    }
    expect(await apiStatus(signedIn)).toBe(200)
    // The same SET, with the token: its jti was not used up by the refusals.
    await pushAccepted(token)
    expect(await apiStatus(signedIn)).toBe(401)
  })
})
