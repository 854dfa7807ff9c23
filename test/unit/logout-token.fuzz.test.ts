/**
 * Property-based: the back-channel logout token verifier, fed garbage,
 * JWT-shaped garbage, and correctly signed tokens with arbitrary claims, only
 * ever resolves for a token that passes every check, and only ever fails with
 * LogoutTokenError. Keys come from a real JWKS endpoint on loopback.
 */
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload, type CryptoKey } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogoutTokenVerifier, LogoutTokenError, type LogoutTokenVerifier } from '../../gateway/auth/logout-token.js'

const ISSUER = 'https://idp.example.com'
const CLIENT_ID = 'bff-gateway'
const EVENT = 'http://schemas.openid.net/event/backchannel-logout'
const MAX_AGE = 120
const TOLERANCE = 120
const RUNS = 300

let server: Server
let privateKey: CryptoKey
let otherKey: CryptoKey
let verify: LogoutTokenVerifier
/** jti values seen; emptied before each run, so generated values that repeat across runs are not replays. */
const seen = new Set<string>()

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true })
  privateKey = pair.privateKey
  otherKey = (await generateKeyPair('RS256')).privateKey
  const jwks = JSON.stringify({ keys: [{ ...await exportJWK(pair.publicKey), kid: 'k1', alg: 'RS256', use: 'sig' }] })
  server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(jwks)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  verify = createLogoutTokenVerifier({
    issuer: ISSUER,
    clientId: CLIENT_ID,
    jwksUri: async () => jwksUri,
    maxAgeSeconds: MAX_AGE,
    clockToleranceSeconds: TOLERANCE,
    claimJti: async (key) => {
      if (seen.has(key)) return false
      seen.add(key)
      return true
    },
  })
})
afterAll(() => new Promise<void>(resolve => server?.close(() => resolve())))

/** Resolves with the verdict; anything thrown other than LogoutTokenError fails the property. */
async function verdict (token: unknown): Promise<{ accepted: boolean, reason?: string }> {
  try {
    await verify(token as string)
    return { accepted: true }
  } catch (error) {
    if (!(error instanceof LogoutTokenError)) throw new Error(`escaped: ${String(error)}`, { cause: error })
    return { accepted: false, reason: error.reason }
  }
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined').toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

const anyValue = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.object({ maxDepth: 1 }))

const garbage = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.base64String({ maxLength: 300 }),
  fc.array(fc.string({ unit: fc.constantFrom(...'eyJhbGciOiJSUzI1NiJ9AZaz09-_.='.split('')), maxLength: 80 }), { minLength: 1, maxLength: 6 }).map(parts => parts.join('.')),
  fc.constantFrom('', '.', '..', '...', 'a.b.c', 'e30.e30.', 'e30.e30.e30', 'x'.repeat(20_000)),
  fc.anything()
)

/** Three base64url parts with arbitrary JSON (or not) headers and payloads, and a made-up signature. */
const jwtShaped = fc.tuple(
  fc.oneof(fc.record({
    alg: fc.oneof(fc.constantFrom('RS256', 'none', 'HS256', 'ES256', 'RS512', ''), anyValue),
    typ: fc.option(fc.oneof(fc.constantFrom('logout+jwt', 'JWT', 'at+jwt', ''), anyValue)),
    kid: fc.option(fc.oneof(fc.constantFrom('k1', 'k2', '../etc', ''), anyValue)),
    crit: fc.option(anyValue),
  }), anyValue),
  fc.oneof(fc.dictionary(fc.constantFrom('iss', 'aud', 'iat', 'exp', 'sub', 'sid', 'jti', 'events', 'nonce'), anyValue), anyValue),
  fc.oneof(fc.base64String({ maxLength: 350 }).map(s => s.replace(/[+/=]/g, '')), fc.constant(''))
).map(([header, payload, signature]) => `${b64(header)}.${b64(payload)}.${signature}`)

/** Correctly signed tokens whose claims are each usually right and sometimes wrong in any way. */
const signedClaims = fc.record({
  iss: fc.oneof({ weight: 20, arbitrary: fc.constant(ISSUER) }, anyValue, fc.constant(undefined)),
  aud: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(CLIENT_ID, [CLIENT_ID, 'other']) }, anyValue, fc.constant(undefined)),
  iatOffset: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: -MAX_AGE - TOLERANCE - 60, max: TOLERANCE + 60 }) }, fc.constant(undefined)),
  events: fc.oneof({ weight: 20, arbitrary: fc.constant({ [EVENT]: {} }) }, fc.constant({ [EVENT]: [] }), fc.constant({ [EVENT]: null }), fc.constant({ other: {} }), anyValue, fc.constant(undefined)),
  sub: fc.oneof({ weight: 6, arbitrary: fc.constant('alice') }, anyValue, fc.constant(undefined)),
  sid: fc.oneof({ weight: 6, arbitrary: fc.uuid() }, anyValue, fc.constant(undefined)),
  jti: fc.oneof({ weight: 20, arbitrary: fc.uuid() }, anyValue, fc.constant(undefined)),
  nonce: fc.oneof({ weight: 20, arbitrary: fc.constant(undefined) }, anyValue),
  typ: fc.oneof({ weight: 8, arbitrary: fc.constant('logout+jwt') }, fc.constantFrom('JWT', 'at+jwt', 'application/logout+jwt', undefined)),
  wrongKey: fc.oneof({ weight: 20, arbitrary: fc.constant(false) }, fc.constant(true)),
})

type SignedClaims = typeof signedClaims extends fc.Arbitrary<infer T> ? T : never

async function sign (c: SignedClaims): Promise<string> {
  const payload: Record<string, unknown> = {}
  for (const name of ['iss', 'aud', 'events', 'sub', 'sid', 'jti', 'nonce'] as const) {
    if (c[name] !== undefined) payload[name] = c[name]
  }
  if (c.iatOffset !== undefined) payload.iat = now() + c.iatOffset
  return new SignJWT(payload as JWTPayload)
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', ...(c.typ ? { typ: c.typ } : {}) })
    .sign(c.wrongKey ? otherKey : privateKey)
}

/** What the specification (and our README) requires of a logout token, independently of the code. */
function shouldAccept (c: SignedClaims): boolean {
  const event = typeof c.events === 'object' && c.events !== null && !Array.isArray(c.events) ? (c.events as Record<string, unknown>)[EVENT] : undefined
  const audiences = Array.isArray(c.aud) ? c.aud : [c.aud]
  const nonEmpty = (v: unknown) => typeof v === 'string' && v !== ''
  return !c.wrongKey &&
    c.iss === ISSUER &&
    audiences.includes(CLIENT_ID) &&
    c.iatOffset !== undefined &&
    // A margin of 5 s each side of the window keeps the test independent of how long signing takes.
    c.iatOffset >= -MAX_AGE - TOLERANCE + 5 && c.iatOffset <= TOLERANCE - 5 &&
    typeof event === 'object' && event !== null && !Array.isArray(event) &&
    c.nonce === undefined &&
    (nonEmpty(c.sub) || nonEmpty(c.sid)) &&
    nonEmpty(c.jti) &&
    (c.typ === undefined || c.typ === 'logout+jwt' || c.typ === 'application/logout+jwt')
}

const nearWindowEdge = (c: SignedClaims) => c.iatOffset !== undefined &&
  (Math.abs(c.iatOffset - TOLERANCE) < 5 || Math.abs(c.iatOffset + MAX_AGE + TOLERANCE) < 5)

describe('the logout token verifier under hostile input (property-based)', () => {
  it('rejects any string or value that is not a signed JWT, always with LogoutTokenError', async () => {
    await fc.assert(fc.asyncProperty(garbage, async token => {
      expect((await verdict(token)).accepted).toBe(false)
    }), { numRuns: RUNS })
  })

  it('rejects JWT-shaped tokens with arbitrary headers, payloads and made-up signatures, always with LogoutTokenError', async () => {
    await fc.assert(fc.asyncProperty(jwtShaped, async token => {
      expect((await verdict(token)).accepted).toBe(false)
    }), { numRuns: RUNS })
  })

  it('accepts a signed token exactly when every claim is right (iat within max age and the clock tolerance), once', async () => {
    await fc.assert(fc.asyncProperty(signedClaims, async claims => {
      if (nearWindowEdge(claims)) return
      seen.clear()
      const token = await sign(claims)
      const first = await verdict(token)
      expect(first.accepted, `${JSON.stringify(claims)} → ${first.reason}`).toBe(shouldAccept(claims))
      if (first.accepted) expect(await verdict(token)).toEqual({ accepted: false, reason: 'replayed' })
    }), { numRuns: RUNS })
  })
})
