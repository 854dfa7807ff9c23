/**
 * Shared Signals from the identity provider itself (issue 18): SSF_ISSUER is
 * OIDC_ISSUER and SSF_JWKS_URI is unset, so the receiver finds the
 * transmitter's keys through the IdP's discovery document, the keys its ID
 * tokens are signed with. The mock IdP's transmitter pushes real Security
 * Event Tokens to `/bff/ssf/events`: each event type's effect on sessions of
 * real logins (subjects built from the ID tokens the gateway got), together
 * with the change at the IdP it reports; each forgery, refused with its RFC
 * 8935 code and no effect; the push token.
 *
 * ssf-receiver.test.ts proves the same receiver against a transmitter of the
 * test's own (another issuer, its own JWKS URI, ES256): audit lines, metrics,
 * subject formats, event types it ignores.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt } from 'jose'
import { ACR_MFA, CAEP_EVENTS, DEFAULT_MFA_CODE, RISC_EVENTS, type PushSecurityEventOptions, type SecurityEventDelivery } from '../../upstream-mock/idp.js'
import { DEFAULT_USERS } from '../../upstream-mock/users.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { freePort } from '../helpers/free-port.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { authenticateAtIdp, capture, loginThroughIdp, loginToCallback, LoginFlowError } from '../helpers/login-flow.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'

const PUSH_TOKEN = 'idp-ssf-push-token-0123456789-abcdefghij'
/** Each test signs in users of its own, so one test's disabled account or ended sessions touch no other. */
const USERS = ['carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'].map(name => ({
  username: name, password: `${name}-password`, roles: ['user'], name, email: `${name}@example.com`,
}))

let stack: Stack
let url: string
/** Every ID token the IdP issued at a code exchange, in order. */
const idTokens: string[] = []

beforeAll(async () => {
  // The issuer holds the IdP's port, which the gateway's SSF_ISSUER must name before both start.
  const idpPort = await freePort()
  const issuer = `http://127.0.0.1:${idpPort}`
  stack = await startStack({
    idp: { port: idpPort, acr: true, users: [...DEFAULT_USERS, ...USERS] },
    gatewayEnv: { SSF_ISSUER: issuer, SSF_PUSH_TOKEN: PUSH_TOKEN },
    policy: (api) => ({
      routes: [{
        prefix: '/api',
        upstream: api,
        rewritePrefix: '',
        allow: [
          { methods: ['GET'], path: '/orders', roles: ['user'] },
          { methods: ['GET'], path: '/orders/:id', roles: ['user'], acr: [ACR_MFA] },
          { methods: ['DELETE'], path: '/admin/users/:id', roles: ['admin'] },
        ],
      }],
    }),
  })
  url = stack.publicUrl
  expect(stack.idp.issuer).toBe(issuer)
  stack.idp.provider.on('grant.success', (ctx) => {
    const body = (ctx as { body?: { id_token?: unknown } }).body
    if (typeof body?.id_token === 'string') idTokens.push(body.id_token)
  })
})
afterAll(async () => { await stack?.close() })

interface Login {
  browser: HttpBrowser
  cookie: string
  csrfToken: string
  /** The ID token's `sid`: the IdP session this login came through. */
  sid: string
}

/** A login through the IdP in a browser of its own (so an IdP session of its own); with `mfa`, the MFA login. */
async function signIn (username: string, mfa = false): Promise<Login> {
  const browser = new HttpBrowser({ cookieScope: 'host' })
  const before = idTokens.length
  await loginThroughIdp(browser, url, {
    username,
    password: `${username}-password`,
    ...(mfa ? { oneTimeCode: DEFAULT_MFA_CODE, query: { acr_values: ACR_MFA } } : {}),
  })
  const [idToken] = idTokens.slice(before)
  const { sid, sub } = decodeJwt(idToken!)
  expect(sub).toBe(username)
  const { csrfToken } = await (await browser.fetch(`${url}/bff/user`)).json() as { csrfToken: string }
  return { browser, cookie: browser.cookieHeader(url), csrfToken, sid: sid as string }
}

const status = async (login: Login, path = '/api/orders', method = 'GET') =>
  (await fetch(`${url}${path}`, { method, headers: { cookie: login.cookie, 'x-csrf-token': login.csrfToken } })).status

const admin = async (path: string, method = 'GET') =>
  await (await fetch(`${stack.gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).json() as unknown

/** The IdP pushes a SET about `sub` (one IdP session of theirs with `sid`) to the gateway, with the push token. */
const push = (type: string, sub: string, options: Partial<PushSecurityEventOptions> & { sid?: string } = {}): Promise<SecurityEventDelivery> => {
  const { sid, ...rest } = options
  return stack.idp.pushSecurityEvent({
    receiverUrl: `${url}/bff/ssf/events`,
    audience: url,
    pushToken: PUSH_TOKEN,
    subject: stack.idp.subjectFor(sub, sid),
    events: { [type]: { event_timestamp: Math.floor(Date.now() / 1000) } },
    ...rest,
  })
}

async function pushAccepted (type: string, sub: string, options: Partial<PushSecurityEventOptions> & { sid?: string } = {}): Promise<void> {
  const delivery = await push(type, sub, options)
  expect(delivery.status, delivery.body).toBe(202)
}

/** A login through the IdP, stopping at the gateway's answer to the callback (whatever it is). */
async function attemptLogin (username: string) {
  const browser = new HttpBrowser({ cookieScope: 'host' })
  return { browser, callback: await loginToCallback(browser, url, { username, password: `${username}-password` }) }
}

it('takes the IdP\'s keys from its discovery document: no SSF_JWKS_URI is configured', () => {
  expect(stack.gateway.config.ssf).toMatchObject({ issuer: stack.idp.issuer, jwksUri: undefined })
})

describe('the events the IdP sends, and their effect', () => {
  it('CAEP session-revoked for a user ends every session of theirs, from every IdP session; other users go on', async () => {
    const laptop = await signIn('carol')
    const phone = await signIn('carol')
    const other = await signIn('dave')
    await pushAccepted(CAEP_EVENTS.sessionRevoked, 'carol')
    expect(await status(laptop)).toBe(401)
    expect(await status(phone)).toBe(401)
    expect(await status(other)).toBe(200)
    expect(await admin('/admin/users/carol')).toMatchObject({ status: 'active', sessions: 0 })
  })

  it('CAEP session-revoked for one IdP session (complex subject, the ID token\'s sid) ends only the sessions it gave', async () => {
    const laptop = await signIn('dave')
    const phone = await signIn('dave')
    expect(laptop.sid).not.toBe(phone.sid)
    await pushAccepted(CAEP_EVENTS.sessionRevoked, 'dave', { sid: laptop.sid })
    expect(await status(laptop)).toBe(401)
    expect(await status(phone)).toBe(200)
  })

  it('CAEP credential-change (the user changed their password at the IdP) ends all their sessions', async () => {
    const laptop = await signIn('erin')
    const phone = await signIn('erin')
    await pushAccepted(CAEP_EVENTS.credentialChange, 'erin', { events: { [CAEP_EVENTS.credentialChange]: { credential_type: 'password', change_type: 'update' } } })
    expect(await status(laptop)).toBe(401)
    expect(await status(phone)).toBe(401)
    // The user signs in again (with the new password, as far as the gateway can tell).
    expect(await status(await signIn('erin'))).toBe(200)
  })

  it('CAEP token-claims-change after a role change at the IdP: the next request has the new roles, with exactly one token call', async () => {
    const login = await signIn('frank')
    expect(await status(login, '/api/admin/users/9', 'DELETE')).toBe(403)
    stack.idp.setRoles('frank', ['user', 'admin'])
    stack.idp.resetCounters()
    await pushAccepted(CAEP_EVENTS.tokenClaimsChange, 'frank', { events: { [CAEP_EVENTS.tokenClaimsChange]: { claims: { roles: ['user', 'admin'] } } } })
    expect(await status(login, '/api/admin/users/9', 'DELETE')).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
    expect(await (await fetch(`${url}/bff/user`, { headers: { cookie: login.cookie } })).json()).toMatchObject({ roles: ['user', 'admin'] })
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)

    // A role removed, for one IdP session: that session loses it at its next request; the other
    // session of the user is not refreshed, and keeps the roles of its tokens until it refreshes.
    const other = await signIn('frank')
    stack.idp.setRoles('frank', ['user'])
    stack.idp.resetCounters()
    await pushAccepted(CAEP_EVENTS.tokenClaimsChange, 'frank', { sid: login.sid })
    expect(await status(login, '/api/admin/users/9', 'DELETE')).toBe(403)
    expect(await status(other, '/api/admin/users/9', 'DELETE')).toBe(200)
    expect(stack.idp.tokenCalls.refreshToken).toBe(1)
  })

  it('CAEP assurance-level-change: an MFA session forgets its acr, a route requiring it asks for a step-up, the MFA login restores it', async () => {
    const login = await signIn('grace', true)
    expect(await status(login, '/api/orders/7')).toBe(200)
    await pushAccepted(CAEP_EVENTS.assuranceLevelChange, 'grace', {
      events: { [CAEP_EVENTS.assuranceLevelChange]: { namespace: 'RFC8176', current_level: 'pwd', previous_level: 'mfa', change_direction: 'decrease' } },
    })
    const refused = await fetch(`${url}/api/orders/7`, { headers: { cookie: login.cookie } })
    expect(refused.status).toBe(401)
    const { error, loginUrl } = await refused.json() as { error: string, loginUrl: string }
    expect(error).toBe('step_up_required')
    expect(new URL(loginUrl, url).searchParams.get('acr_values')).toBe(ACR_MFA)
    // Nothing else changed: the session goes on where no acr is required.
    expect(await status(login)).toBe(200)
    expect(await (await fetch(`${url}/bff/user`, { headers: { cookie: login.cookie } })).json()).toMatchObject({ sub: 'grace', acr: null })

    const start = await capture(login.browser, new URL(loginUrl, url).href)
    const idp = await authenticateAtIdp(login.browser, start.location!, url, { username: 'grace', password: 'grace-password', oneTimeCode: DEFAULT_MFA_CODE })
    await capture(login.browser, idp.callbackUrl)
    expect((await login.browser.fetch(`${url}/api/orders/7`)).status).toBe(200)
  })

  it('RISC account-disabled and account-enabled, as the IdP disables and enables the user: sessions end, logins are refused, then work again', async () => {
    const login = await signIn('heidi')
    stack.idp.disableUser('heidi')
    await pushAccepted(RISC_EVENTS.accountDisabled, 'heidi', { events: { [RISC_EVENTS.accountDisabled]: { reason: 'hijacking' } } })
    expect(await status(login)).toBe(401)
    expect(await admin('/admin/users/heidi')).toEqual({ sub: 'heidi', status: 'disabled', sessions: 0 })
    // The IdP refuses the password itself; a login that got through the IdP before it noticed is
    // refused by the gateway: enable at the IdP only, and the gateway still says account_disabled.
    await expect(attemptLogin('heidi')).rejects.toThrow(LoginFlowError)
    stack.idp.enableUser('heidi')
    const { browser, callback } = await attemptLogin('heidi')
    expect(callback.status).toBe(403)
    expect(JSON.parse(callback.body)).toMatchObject({ error: 'account_disabled' })
    expect((await browser.fetch(`${url}/bff/user`)).status).toBe(401)

    await pushAccepted(RISC_EVENTS.accountEnabled, 'heidi')
    expect(await admin('/admin/users/heidi')).toMatchObject({ status: 'active' })
    expect(await status(await signIn('heidi'))).toBe(200)
  })

  it('RISC account-purged ends every session and refuses logins', async () => {
    const login = await signIn('ivan')
    await pushAccepted(RISC_EVENTS.accountPurged, 'ivan')
    expect(await status(login)).toBe(401)
    expect(await admin('/admin/users/ivan')).toEqual({ sub: 'ivan', status: 'disabled', sessions: 0 })
    expect((await attemptLogin('ivan')).callback.status).toBe(403)
  })
})

describe('forged or misdelivered SETs: refused with RFC 8935\'s code, and nothing happens', () => {
  const now = () => Math.floor(Date.now() / 1000)
  const refusals: Array<[string, Partial<PushSecurityEventOptions>, number, string]> = [
    ['signed with a key the IdP does not publish, under its key id', { foreignKey: true }, 400, 'invalid_key'],
    ['unsigned (alg: none)', { alg: 'none' }, 400, 'invalid_key'],
    ['from another issuer', { issuer: 'https://impostor.example' }, 400, 'invalid_issuer'],
    ['for another audience', { audience: 'https://other-app.example' }, 400, 'invalid_audience'],
    ['issued more than 5 minutes ago', { iat: now() - 400 }, 400, 'invalid_request'],
    ['sent as another content type', { contentType: 'application/json' }, 400, 'invalid_request'],
    ['without the push token', { pushToken: undefined }, 401, 'authentication_failed'],
    ['with another push token', { pushToken: 'not-the-push-token-0123456789-abcdefghij' }, 401, 'authentication_failed'],
  ]

  it.each(refusals)('a SET %s', async (_case, forgery, expectedStatus, code) => {
    const login = await signIn('judy')
    const delivery = await push(CAEP_EVENTS.sessionRevoked, 'judy', forgery)
    expect(delivery.status).toBe(expectedStatus)
    expect(delivery.json).toEqual({ err: code, description: expect.any(String) })
    expect(await status(login)).toBe(200)
  })

  it('a replayed jti: the second delivery is refused and changes nothing', async () => {
    const jti = randomUUID()
    await pushAccepted(RISC_EVENTS.accountDisabled, 'judy', { jti })
    await pushAccepted(RISC_EVENTS.accountEnabled, 'judy')
    const login = await signIn('judy')
    const replay = await push(RISC_EVENTS.accountDisabled, 'judy', { jti })
    expect(replay.status).toBe(400)
    expect(replay.json).toEqual({ err: 'invalid_request', description: expect.stringMatching(/replayed/) })
    expect(await status(login)).toBe(200)
    expect(await admin('/admin/users/judy')).toMatchObject({ status: 'active' })
  })

  it('a body that is not a JWT', async () => {
    const login = await signIn('judy')
    const response = await fetch(`${url}/bff/ssf/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt', authorization: `Bearer ${PUSH_TOKEN}` },
      body: JSON.stringify({ iss: stack.idp.issuer, events: { [CAEP_EVENTS.sessionRevoked]: {} }, sub_id: stack.idp.subjectFor('judy') }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({ err: 'invalid_request', description: expect.any(String) })
    expect(await status(login)).toBe(200)
  })

  it('a refused SET does not use up its jti: the genuine one with it is then accepted', async () => {
    const login = await signIn('judy')
    const jti = randomUUID()
    expect((await push(CAEP_EVENTS.sessionRevoked, 'judy', { jti, pushToken: undefined })).status).toBe(401)
    expect((await push(CAEP_EVENTS.sessionRevoked, 'judy', { jti, foreignKey: true })).status).toBe(400)
    await pushAccepted(CAEP_EVENTS.sessionRevoked, 'judy', { jti })
    expect(await status(login)).toBe(401)
  })
})
