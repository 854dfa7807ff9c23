/**
 * DPoP to the APIs (RFC 9449), against the real IdP and APIs that demand
 * DPoP-bound tokens: the gateway's tokens are bound to the session's key (the
 * gateway's own for client tokens), every forwarded request carries a fresh
 * proof, and what the gateway sent is worthless to anyone who copies it.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeJwt, generateKeyPair } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { UpstreamApi } from '../../upstream-mock/api.js'
import { createDpopProof } from '../helpers/mock-relying-party.js'
import { signIn } from '../helpers/sign-in.js'
import { startStack, type Stack } from '../helpers/stack.js'

const BILLING = 'https://billing.test.example'
const REPORTS = 'https://reports.test.example'
const CATALOG = 'https://catalog.test.example'
const SCOPES = 'openid profile email offline_access billing:read reports:read catalog:read'

/** An upstream that challenges every proof for a new nonce, however many times it is asked. */
async function startStubbornUpstream () {
  const requests: Array<{ proof: string }> = []
  const server = createServer((request, response) => {
    requests.push({ proof: String(request.headers.dpop) })
    request.resume()
    response.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': `nonce-${requests.length}`, 'content-type': 'application/json' })
    response.end('{"error":"use_dpop_nonce"}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}

let stubborn: Awaited<ReturnType<typeof startStubbornUpstream>>

function dpopPolicy (upstream: string, apis: Record<string, UpstreamApi>) {
  return {
    routes: [
      {
        prefix: '/stubborn',
        upstream: stubborn.url,
        token: { audience: BILLING, dpop: true },
        allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }],
      },
      {
        prefix: '/billing',
        upstream: apis.billing!.url,
        token: { audience: BILLING, dpop: true },
        allow: [
          { methods: ['GET'], path: '/me', roles: ['user'] },
          { methods: ['GET'], path: '/invoices', roles: ['user'] },
          { methods: ['POST', 'PUT'], path: '/echo/:thing', roles: ['user'] },
        ],
      },
      {
        prefix: '/reports',
        upstream: apis.reports!.url,
        token: { audience: REPORTS, exchange: 'token-exchange', dpop: true },
        allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }],
      },
      {
        prefix: '/catalog',
        upstream: apis.catalog!.url,
        token: { type: 'client', audience: CATALOG, dpop: true },
        allow: [{ methods: ['GET'], path: '/me' }],
      },
      {
        prefix: '/api',
        upstream,
        token: { dpop: true },
        allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }],
      },
    ],
  }
}

/** The token and proof of what the gateway sent an API last. */
function lastCredentials (api: UpstreamApi) {
  const received = api.received.at(-1)!
  const [scheme, token] = (received.headers.authorization ?? '').split(' ')
  return { scheme, token: token!, proof: received.headers.dpop as string, url: received.url }
}

describe('DPoP to the APIs', () => {
  let stack: Stack
  beforeAll(async () => {
    stubborn = await startStubbornUpstream()
    stack = await startStack({
      api: { dpop: { required: true } },
      apis: {
        billing: { audience: BILLING, scopes: ['billing:read'], dpop: { required: true, nonce: true } },
        reports: { audience: REPORTS, scopes: ['reports:read'], dpop: { required: true } },
        catalog: { audience: CATALOG, scopes: ['catalog:read'], dpop: { required: true } },
      },
      idpClient: { clientCredentials: true, tokenExchange: true },
      gatewayEnv: { OIDC_SCOPES: SCOPES },
      policy: dpopPolicy,
    })
  })
  afterAll(async () => {
    await stack?.close()
    await stubborn?.close()
  })

  it('sends every API a token bound to a key, with a proof of that key for the request', async () => {
    const user = await signIn(stack.publicUrl)
    stack.idp.resetCounters()
    for (const path of ['/api/me', '/billing/me', '/reports/me', '/catalog/me']) {
      const response = await fetch(`${stack.publicUrl}${path}`, { headers: { cookie: user.cookie } })
      expect(response.status, path).toBe(200)
    }
    // The session's own token was bound at the code exchange: no refresh was needed to bind it.
    expect(stack.idp.tokenCalls).toMatchObject({ refreshToken: 1, tokenExchange: 1, clientCredentials: 1 })

    const own = stack.api.received.at(-1)!.token!
    const billing = stack.apis.billing!.received.at(-1)!.token!
    const reports = stack.apis.reports!.received.at(-1)!.token!
    const catalog = stack.apis.catalog!.received.at(-1)!.token!
    for (const token of [own, billing, reports, catalog]) expect(token.scheme).toBe('DPoP')
    // One key per session for all of the user's tokens; the gateway's own key for its client token.
    expect(billing.cnf?.jkt).toBeDefined()
    expect(own.cnf?.jkt).toBe(billing.cnf?.jkt)
    expect(reports.cnf?.jkt).toBe(billing.cnf?.jkt)
    expect(catalog.cnf?.jkt).toBeDefined()
    expect(catalog.cnf?.jkt).not.toBe(billing.cnf?.jkt)
    expect(catalog).toMatchObject({ sub: 'bff-gateway', audience: CATALOG })

    const proof = decodeJwt(lastCredentials(stack.api).proof)
    expect(proof).toMatchObject({ htm: 'GET', htu: `${stack.api.url}/me` })
    expect(typeof proof.jti).toBe('string')
    expect(typeof proof.ath).toBe('string')

    // Another session has another key.
    const other = await signIn(stack.publicUrl)
    expect((await fetch(`${stack.publicUrl}/billing/me`, { headers: { cookie: other.cookie } })).status).toBe(200)
    expect(stack.apis.billing!.received.at(-1)!.token!.cnf?.jkt).not.toBe(billing.cnf?.jkt)
  })

  it('refuses the token replayed without a proof, with another key\'s proof, with a proof for another URL, or with the same proof again', async () => {
    const user = await signIn(stack.publicUrl)
    expect((await fetch(`${stack.publicUrl}/api/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
    const { token, proof } = lastCredentials(stack.api)
    const me = `${stack.api.url}/me`

    const bare = await fetch(me, { headers: { authorization: `DPoP ${token}` } })
    expect(bare.status).toBe(401)
    const asBearer = await fetch(me, { headers: { authorization: `Bearer ${token}` } })
    expect(asBearer.status).toBe(401)

    const otherKey = await generateKeyPair('ES256')
    const foreignProof = await createDpopProof(otherKey, { htm: 'GET', htu: me, accessToken: token })
    const foreign = await fetch(me, { headers: { authorization: `DPoP ${token}`, dpop: foreignProof } })
    expect(foreign.status).toBe(401)
    expect(await foreign.json()).toMatchObject({ error: 'invalid_dpop_proof' })

    const elsewhere = await fetch(`${stack.api.url}/orders`, { headers: { authorization: `DPoP ${token}`, dpop: proof } })
    expect(elsewhere.status).toBe(401)
    expect(await elsewhere.json()).toMatchObject({ error: 'invalid_dpop_proof' })

    const replayed = await fetch(me, { headers: { authorization: `DPoP ${token}`, dpop: proof } })
    expect(replayed.status).toBe(401)
  })

  it('answers an API\'s nonce challenge with one retry, and remembers the nonce', async () => {
    const user = await signIn(stack.publicUrl)
    const billing = stack.apis.billing!
    billing.rotateDpopNonce()
    billing.clear()
    const response = await fetch(`${stack.publicUrl}/billing/invoices`, { headers: { cookie: user.cookie } })
    expect(response.status).toBe(200)
    expect(billing.received.map(r => r.token === undefined ? 'refused' : 'accepted')).toEqual(['refused', 'accepted'])
    expect(decodeJwt(lastCredentials(billing).proof).nonce).toBe(billing.dpopNonce)

    billing.clear()
    expect((await fetch(`${stack.publicUrl}/billing/invoices`, { headers: { cookie: user.cookie } })).status).toBe(200)
    expect(billing.received).toHaveLength(1)
  })

  it('sends a POST\'s body again on the retry', async () => {
    const user = await signIn(stack.publicUrl)
    const billing = stack.apis.billing!
    expect((await fetch(`${stack.publicUrl}/billing/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
    billing.rotateDpopNonce()
    billing.clear()
    const body = `amount=42 note=${'x'.repeat(2000)}`
    const response = await fetch(`${stack.publicUrl}/billing/echo/payment`, {
      method: 'POST',
      headers: { cookie: user.cookie, 'x-csrf-token': user.csrfToken, 'content-type': 'text/plain', origin: stack.publicUrl },
      body,
    })
    expect(response.status).toBe(200)
    const echoed = await response.json() as { method: string, body: unknown, token: { scheme: string } }
    expect(echoed.method).toBe('POST')
    expect(echoed.token.scheme).toBe('DPoP')
    expect(echoed.body === body).toBe(true)
    expect(billing.received).toHaveLength(2)
    expect(billing.received.map(r => r.body === body)).toEqual([true, true])
    expect(decodeJwt(lastCredentials(billing).proof)).toMatchObject({ htm: 'POST', htu: `${billing.url}/echo/payment` })
  })

  it('answers a nonce challenge only once: a second challenge reaches the browser', async () => {
    const user = await signIn(stack.publicUrl)
    stubborn.requests.length = 0
    const response = await fetch(`${stack.publicUrl}/stubborn/me`, { headers: { cookie: user.cookie } })
    expect(response.status).toBe(401)
    expect(stubborn.requests.map(r => decodeJwt(r.proof).nonce)).toEqual([undefined, 'nonce-1'])
  })
})

describe('DPoP at an IdP that demands nonces', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({
      store: 'memory',
      idp: { dpopNonce: true },
      api: { dpop: { required: true } },
      policy: (upstream) => ({ routes: [{ prefix: '/api', upstream, token: { dpop: true }, allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }] }] }),
    })
  })
  afterAll(async () => { await stack?.close() })

  it('answers the token endpoint\'s nonce challenge, at the code exchange and after', async () => {
    const user = await signIn(stack.publicUrl)
    const response = await fetch(`${stack.publicUrl}/api/me`, { headers: { cookie: user.cookie } })
    expect(response.status).toBe(200)
    expect(stack.api.received.at(-1)!.token).toMatchObject({ scheme: 'DPoP', sub: 'alice' })
  })
})
