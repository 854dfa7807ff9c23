/**
 * A session that ends while the IdP is refreshing its tokens: its own logout, an operator,
 * the IdP's back-channel logout, or another device of the user. The refresh is held at the
 * real oidc-provider's token endpoint while the session ends, then let go:
 *  - refused (the ending revoked the refresh token at the IdP first): that is no sign of
 *    theft, so the user's other sessions live on;
 *  - granted (the IdP had rotated the token already): the new refresh token, which no session
 *    holds, is revoked at the IdP.
 * Either way the request gets 401 session_expired. Real Redis, real gateway over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { INVALIDATION_CHANNEL, keyFor } from '../../gateway/session/keys.js'
import { invalidationMessage } from '../../gateway/session/invalidation.js'
import type { SessionMeta } from '../../gateway/session/store.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { signIn, type SignedInUser } from '../helpers/sign-in.js'
import { TEST_ADMIN_TOKEN, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../helpers/gateway.js'
import type { RefreshHoldStage } from '../../upstream-mock/idp.js'

let stack: Stack
let redis: Redis
// A refresh skew as long as the access token's life: every forwarded request refreshes first,
// so a race needs no waiting for a token to expire.
beforeAll(async () => {
  stack = await startStack({ idp: { accessTokenTtl: 60 }, gatewayEnv: { TOKEN_REFRESH_SKEW: '60' } })
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

const apiCall = (user: SignedInUser) => fetch(`${stack.publicUrl}/api/orders`, { headers: { cookie: user.cookie } })
const userStatus = async (user: SignedInUser) => (await fetch(`${stack.publicUrl}/bff/user`, { headers: { cookie: user.cookie } })).status
const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${stack.gateway.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })

async function metric (name: string): Promise<number> {
  const text = await (await admin('/metrics')).text()
  return text.split('\n').filter(l => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
}
const theftsSuspected = () => metric('bff_audit_events_total{event="theft_suspected"')

async function sessionId (user: SignedInUser): Promise<string> {
  const response = await fetch(`${stack.publicUrl}/bff/sessions`, { headers: { cookie: user.cookie } })
  const { sessions } = await response.json() as { sessions: Array<{ id: string, current: boolean }> }
  return sessions.find(s => s.current)!.id
}

/** RFC 7662 introspection at the IdP, as the gateway's client. */
async function isActiveAtIdp (refreshToken: string): Promise<boolean> {
  const metadata = await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json() as { introspection_endpoint: string }
  const response = await fetch(metadata.introspection_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${TEST_CLIENT_ID}:${TEST_CLIENT_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }),
  })
  expect(response.status).toBe(200)
  return ((await response.json()) as { active: boolean }).active
}

/** Ends the session of `victim`, whose refresh is in flight; `otherDevice` is the same user's. */
type Ending = (victim: SignedInUser, otherDevice: SignedInUser) => Promise<void>

const endings: Record<string, Ending> = {
  'its own logout': async (victim) => {
    const response = await fetch(`${stack.publicUrl}/bff/logout`, { method: 'POST', headers: { cookie: victim.cookie, 'x-csrf-token': victim.csrfToken } })
    expect(response.status).toBe(200)
  },
  'an operator (DELETE /admin/sessions/:id)': async (victim) => {
    const response = await admin(`/admin/sessions/${await sessionId(victim)}`, { method: 'DELETE' })
    expect(await response.json()).toEqual({ revoked: 1 })
  },
  'the IdP\'s back-channel logout of that device\'s IdP session': async (victim) => {
    const meta = JSON.parse((await redis.hget(keyFor.session(await sessionId(victim)), 'meta'))!) as SessionMeta
    const deliveries = await stack.idp.logoutUser('alice', meta.sid!)
    expect(deliveries.map(d => d.status)).toEqual([200])
  },
  'another device of the user (DELETE /bff/sessions/:id)': async (victim, otherDevice) => {
    const response = await fetch(`${stack.publicUrl}/bff/sessions/${await sessionId(victim)}`, {
      method: 'DELETE', headers: { cookie: otherDevice.cookie, 'x-csrf-token': otherDevice.csrfToken },
    })
    expect(await response.json()).toEqual({ revoked: 1 })
  },
}

/** Three devices of alice; a refresh of the first, held at the IdP's token endpoint. */
async function refreshInFlight (stage: RefreshHoldStage) {
  const [victim, phone, tablet] = [await signIn(stack.publicUrl), await signIn(stack.publicUrl), await signIn(stack.publicUrl)]
  const hold = stack.idp.holdRefreshes(stage)
  const request = apiCall(victim)
  await hold.reached
  return { victim, others: [phone, tablet], hold, request }
}

async function expectOnlyTheVictimEnded (victim: SignedInUser, others: SignedInUser[], theftsBefore: number) {
  expect(await userStatus(victim)).toBe(401)
  for (const device of others) expect(await userStatus(device)).toBe(200)
  // Their grants at the IdP are whole too: their own refreshes still work.
  for (const device of others) expect((await apiCall(device)).status).toBe(200)
  expect(await theftsSuspected()).toBe(theftsBefore)
}

describe('a session that ends while the IdP refuses its refresh', () => {
  it.each(Object.entries(endings))('ended by %s: 401 session_expired, no theft reaction, the user\'s other sessions live on', async (_ending, end) => {
    const theftsBefore = await theftsSuspected()
    const { victim, others, hold, request } = await refreshInFlight('before-decision')
    try {
      await end(victim, others[0]!)
      // The same browser's next request (another tab) meets the ended session, and the gateway
      // revokes its refresh token at the IdP then (a logout did so already).
      expect(await userStatus(victim)).toBe(401)
    } finally {
      hold.release()
    }
    const response = await request
    expect(hold.answers).toEqual([{ error: 'invalid_grant' }])
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'session_expired' })
    await expectOnlyTheVictimEnded(victim, others, theftsBefore)
  })
})

describe('a session that ends after the IdP granted its refresh, before the answer arrived', () => {
  // As on expiry: nobody revokes the session's refresh token at the IdP, so only the gateway's
  // revocation of the new one (not the grant-wide revocation oidc-provider does for the old one) ends it.
  const vanishing: Ending = async (victim) => {
    // As the store's own destroy does: the record goes, and every instance's cache hears of it.
    const handle = await sessionId(victim)
    expect(await redis.del(keyFor.session(handle))).toBe(1)
    await redis.publish(INVALIDATION_CHANNEL, invalidationMessage.session(handle))
  }

  it.each([...Object.entries(endings), ['its record vanishing without a revocation', vanishing] as const])('ended by %s: 401 session_expired, and the refresh token just issued is revoked at the IdP', async (_ending, end) => {
    const theftsBefore = await theftsSuspected()
    const { victim, others, hold, request } = await refreshInFlight('after-decision')
    try {
      await end(victim, others[0]!)
    } finally {
      hold.release()
    }
    const response = await request
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'session_expired' })
    const [answer] = hold.answers
    expect(answer?.refreshToken).toEqual(expect.any(String))
    expect(await isActiveAtIdp(answer!.refreshToken!)).toBe(false)
    await expectOnlyTheVictimEnded(victim, others, theftsBefore)
  })
})
