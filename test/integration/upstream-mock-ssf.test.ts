/**
 * The mock IdP as a Shared Signals transmitter (issue 18): Security Event
 * Tokens (RFC 8417) signed with the key of its ID tokens, pushed per RFC 8935,
 * with the forgeries a receiver must refuse. The receiver here only records
 * what arrived; the SETs are checked with jose against the IdP's JWKS.
 */
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CAEP_EVENTS, RISC_EVENTS, startIdentityProvider } from '../../upstream-mock/idp.js'
import type { IdentityProvider } from '../../upstream-mock/idp.js'
import { MockRelyingParty, RP_REDIRECT_URI } from '../helpers/mock-relying-party.js'

const SECRET = 'mock-test-client-secret-0123456789abcdef'
const AUDIENCE = 'https://app.test.example'

interface Delivery {
  method: string
  headers: IncomingHttpHeaders
  body: string
}

interface Receiver {
  url: string
  deliveries: Delivery[]
  /** What it answers next. */
  answer: { status: number, body?: unknown }
  server: Server
}

async function startReceiver (): Promise<Receiver> {
  const receiver: Receiver = { url: '', deliveries: [], answer: { status: 202 }, server: createServer() }
  receiver.server.on('request', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      receiver.deliveries.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() })
      const { status, body } = receiver.answer
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' })
      res.end(body === undefined ? undefined : JSON.stringify(body))
    })
  })
  await new Promise<void>(resolve => receiver.server.listen(0, '127.0.0.1', resolve))
  const { port } = receiver.server.address() as AddressInfo
  receiver.url = `http://127.0.0.1:${port}/bff/ssf/events`
  return receiver
}

describe('upstream mock: Shared Signals transmitter', () => {
  let idp: IdentityProvider
  let receiver: Receiver
  let keys: ReturnType<typeof createRemoteJWKSet>

  beforeAll(async () => {
    idp = await startIdentityProvider({ clients: [{ clientId: 'gateway', clientSecret: SECRET, redirectUris: [RP_REDIRECT_URI] }] })
    receiver = await startReceiver()
    keys = createRemoteJWKSet(new URL(idp.jwksUri))
  })

  afterAll(async () => {
    await idp?.close()
    await new Promise(resolve => receiver?.server.close(resolve))
  })

  beforeEach(() => {
    receiver.deliveries.length = 0
    receiver.answer = { status: 202 }
  })

  const verify = (set: string) => jwtVerify(set, keys, { issuer: idp.issuer, audience: AUDIENCE, typ: 'secevent+jwt' })

  it('pushes a SET signed with the ID tokens\' key, with its subject in sub_id, and returns the answer', async () => {
    const { tokens } = await (await MockRelyingParty.discover(idp, 'gateway', client.ClientSecretBasic(SECRET))).signIn({ username: 'alice', password: 'alice-password' })
    receiver.answer = { status: 400, body: { err: 'invalid_request', description: 'just testing' } }
    const delivery = await idp.pushSecurityEvent({
      receiverUrl: receiver.url,
      audience: AUDIENCE,
      pushToken: 'push-token-0123456789',
      subject: idp.subjectFor('alice'),
      events: { [RISC_EVENTS.accountDisabled]: { reason: 'bulk' } },
    })
    expect(delivery).toMatchObject({ status: 400, json: { err: 'invalid_request', description: 'just testing' } })

    const [received] = receiver.deliveries
    expect(received?.method).toBe('POST')
    expect(received?.headers['content-type']).toBe('application/secevent+jwt')
    expect(received?.headers.authorization).toBe('Bearer push-token-0123456789')
    expect(received?.body).toBe(delivery.set)

    const { payload, protectedHeader } = await verify(delivery.set)
    expect(protectedHeader).toEqual({ alg: 'RS256', kid: decodeProtectedHeader(tokens.id_token as string).kid, typ: 'secevent+jwt' })
    expect(payload).toEqual({
      iss: idp.issuer,
      aud: AUDIENCE,
      iat: expect.any(Number),
      jti: delivery.jti,
      sub_id: { format: 'iss_sub', iss: idp.issuer, sub: 'alice' },
      events: { [RISC_EVENTS.accountDisabled]: { reason: 'bulk' } },
    })
    expect(Math.abs((payload.iat ?? 0) - Date.now() / 1000)).toBeLessThan(5)
  })

  it('names one IdP session with a complex subject, or puts the subject in the event (earlier drafts)', async () => {
    const session = idp.subjectFor('alice', 'the-sid')
    expect(session).toEqual({ format: 'complex', user: { format: 'iss_sub', iss: idp.issuer, sub: 'alice' }, session: { format: 'opaque', id: 'the-sid' } })
    const event = { event_timestamp: 1_767_225_600, initiating_entity: 'admin' }

    const inSubId = await idp.pushSecurityEvent({ receiverUrl: receiver.url, audience: AUDIENCE, subject: session, events: { [CAEP_EVENTS.sessionRevoked]: event } })
    expect(inSubId.status).toBe(202)
    expect(inSubId.json).toBeUndefined()
    expect(receiver.deliveries[0]?.headers.authorization).toBeUndefined()
    expect((await verify(inSubId.set)).payload).toMatchObject({ sub_id: session, events: { [CAEP_EVENTS.sessionRevoked]: event } })

    const inEvent = await idp.pushSecurityEvent({ receiverUrl: receiver.url, audience: AUDIENCE, subject: session, subjectIn: 'event', events: { [CAEP_EVENTS.sessionRevoked]: event } })
    const { payload } = await verify(inEvent.set)
    expect(payload.sub_id).toBeUndefined()
    expect(payload.events).toEqual({ [CAEP_EVENTS.sessionRevoked]: { subject: session, ...event } })
  })

  it('forges: another key under the IdP\'s kid, another issuer, alg none, an old iat, a replayed jti', async () => {
    const base = { receiverUrl: receiver.url, audience: AUDIENCE, subject: idp.subjectFor('bob'), events: { [CAEP_EVENTS.credentialChange]: {} } }

    const foreign = await idp.pushSecurityEvent({ ...base, foreignKey: true })
    expect(foreign.header).toMatchObject({ alg: 'RS256', typ: 'secevent+jwt' })
    await expect(verify(foreign.set)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' })

    const otherIssuer = await idp.pushSecurityEvent({ ...base, issuer: 'https://evil.test.example' })
    await expect(verify(otherIssuer.set)).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' })

    const unsigned = await idp.pushSecurityEvent({ ...base, alg: 'none' })
    expect(unsigned.set.endsWith('.')).toBe(true)
    expect(decodeProtectedHeader(unsigned.set)).toEqual({ alg: 'none', typ: 'secevent+jwt' })
    await expect(verify(unsigned.set)).rejects.toThrow()

    const old = await idp.pushSecurityEvent({ ...base, iat: Math.floor(Date.now() / 1000) - 3600 })
    expect((await verify(old.set)).payload.iat).toBeLessThan(Date.now() / 1000 - 3500)

    const first = await idp.pushSecurityEvent(base)
    const replay = await idp.pushSecurityEvent({ ...base, jti: first.jti })
    expect((await verify(replay.set)).payload.jti).toBe(first.jti)
    expect(receiver.deliveries).toHaveLength(6)
  })

  it('signs without sending, and can send another content type', async () => {
    const signed = await idp.signSecurityEvent({ audience: AUDIENCE, events: { [RISC_EVENTS.accountEnabled]: {} }, subject: idp.subjectFor('bob') })
    expect(receiver.deliveries).toHaveLength(0)
    expect((await verify(signed.set)).payload).toMatchObject({ jti: signed.jti, sub_id: { sub: 'bob' } })

    await idp.pushSecurityEvent({ receiverUrl: receiver.url, audience: AUDIENCE, events: {}, contentType: 'application/jwt' })
    expect(receiver.deliveries[0]?.headers['content-type']).toBe('application/jwt')
  })

  it('rejects when the receiver cannot be reached', async () => {
    await expect(idp.pushSecurityEvent({ receiverUrl: 'http://127.0.0.1:9/bff/ssf/events', audience: AUDIENCE, events: {} })).rejects.toThrow()
  })
})
