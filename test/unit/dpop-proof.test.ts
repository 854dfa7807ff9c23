/**
 * The DPoP proof checks a native request must pass (RFC 9449 as the contract
 * narrows it), on proofs made with jose, against a fake clock.
 */
import { describe, expect, it } from 'vitest'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import { createDpopProofChecker, DPOP_PROOF_WINDOW_SECONDS, htuOf, verifyDpopProof } from '../../gateway/session/dpop-proof.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'

const PUBLIC_URL = 'https://app.example.com'
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0)
const NOW_SECONDS = NOW / 1000

interface AppKey { privateKey: CryptoKey, jwk: JWK, jkt: string, alg: string }

async function appKey (alg = 'ES256'): Promise<AppKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk), alg }
}

const key = await appKey()
const otherKey = await appKey()

let counter = 0
async function proof (claims: JWTPayload = {}, options: { key?: AppKey, header?: Record<string, unknown> } = {}): Promise<string> {
  const signer = options.key ?? key
  return new SignJWT({ htm: 'GET', htu: `${PUBLIC_URL}/bff/user`, iat: NOW_SECONDS, jti: `jti-${++counter}`, ...claims })
    .setProtectedHeader({ alg: signer.alg, typ: 'dpop+jwt', jwk: signer.jwk, ...options.header })
    .sign(signer.privateKey)
}

const expected = { method: 'GET', htu: `${PUBLIC_URL}/bff/user`, now: NOW }

async function refusal (header: string | string[] | undefined, expectation = expected): Promise<{ error: string, message: string }> {
  try {
    await verifyDpopProof(header, expectation)
  } catch (error) {
    const { code, message, statusCode } = error as { code: string, message: string, statusCode: number }
    expect(statusCode).toBe(401)
    return { error: code, message }
  }
  throw new Error('the proof was accepted')
}

describe('verifyDpopProof', () => {
  it('accepts a proof for this request and gives its key\'s RFC 7638 thumbprint', async () => {
    const verified = await verifyDpopProof(await proof(), expected)
    expect(verified).toEqual({ jkt: key.jkt, jti: expect.stringMatching(/^jti-/), iat: NOW_SECONDS })
  })

  it.each(['ES384', 'EdDSA', 'PS256'])('accepts other asymmetric algorithms (%s)', async (alg) => {
    const other = await appKey(alg)
    expect((await verifyDpopProof(await proof({}, { key: other }), expected)).jkt).toBe(other.jkt)
  })

  it('ignores the query and fragment of htu, as RFC 9449 says', async () => {
    expect((await verifyDpopProof(await proof({ htu: `${PUBLIC_URL}/bff/user?x=1#f` }), expected)).jkt).toBe(key.jkt)
  })

  it('accepts iat exactly at either edge of the window', async () => {
    for (const iat of [NOW_SECONDS - DPOP_PROOF_WINDOW_SECONDS, NOW_SECONDS + DPOP_PROOF_WINDOW_SECONDS]) {
      expect((await verifyDpopProof(await proof({ iat }), expected)).iat).toBe(iat)
    }
  })

  it.each([
    ['missing', undefined, /required/],
    ['sent twice', ['a', 'b'], /exactly one/],
    ['not a JWT', 'not-a-jwt', /not valid/],
    ['far too long', 'x'.repeat(9000), /too long/],
  ])('refuses a proof %s with invalid_dpop_proof', async (_case, header, message) => {
    const { error, message: text } = await refusal(header)
    expect(error).toBe('BFF_INVALID_DPOP_PROOF')
    expect(text).toMatch(message)
  })

  it('refuses the wrong typ, or none', async () => {
    expect((await refusal(await proof({}, { header: { typ: 'JWT' } }))).message).toMatch(/not valid/)
    const untyped = await new SignJWT({ htm: 'GET', htu: expected.htu, iat: NOW_SECONDS, jti: 'untyped' })
      .setProtectedHeader({ alg: 'ES256', jwk: key.jwk }).sign(key.privateKey)
    expect((await refusal(untyped)).message).toMatch(/not valid/)
  })

  it('refuses a symmetric algorithm, even with a key in the header', async () => {
    const secret = new Uint8Array(32).fill(7)
    const symmetric = await new SignJWT({ htm: 'GET', htu: expected.htu, iat: NOW_SECONDS, jti: 'hs' })
      // jose's types keep a secret out of a header; a forger's token is not bound by them.
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') } as JWK })
      .sign(secret)
    expect((await refusal(symmetric)).message).toMatch(/not valid/)
  })

  it('refuses a proof without an embedded key, or with a private one', async () => {
    const keyless = await new SignJWT({ htm: 'GET', htu: expected.htu, iat: NOW_SECONDS, jti: 'keyless' })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt' }).sign(key.privateKey)
    expect((await refusal(keyless)).message).toMatch(/not valid/)
    const privateJwk = await exportJWK(key.privateKey)
    expect((await refusal(await proof({}, { header: { jwk: privateJwk } }))).message).toMatch(/not valid/)
  })

  it('refuses a proof signed by another key than the one it embeds', async () => {
    expect((await refusal(await proof({}, { key: { ...otherKey, jwk: key.jwk } }))).message).toMatch(/not valid/)
  })

  it('refuses a tampered proof', async () => {
    const [head, , signature] = (await proof()).split('.')
    const payload = Buffer.from(JSON.stringify({ htm: 'GET', htu: expected.htu, iat: NOW_SECONDS, jti: 'tampered' })).toString('base64url')
    expect((await refusal(`${head}.${payload}.${signature}`)).message).toMatch(/not valid/)
  })

  it('refuses a proof for another method', async () => {
    expect((await refusal(await proof({ htm: 'POST' }))).message).toMatch(/htm/)
    expect((await refusal(await proof({ htm: undefined }))).message).toMatch(/htm/)
  })

  it('refuses a proof for another URL: path, origin, scheme, or none', async () => {
    for (const htu of [`${PUBLIC_URL}/bff/sessions`, 'https://evil.example/bff/user', 'http://app.example.com/bff/user', 'not a url', undefined]) {
      expect((await refusal(await proof({ htu }))).message, String(htu)).toMatch(/htu/)
    }
  })

  it(`refuses an iat more than ${DPOP_PROOF_WINDOW_SECONDS} s old or ahead, or none`, async () => {
    for (const iat of [NOW_SECONDS - DPOP_PROOF_WINDOW_SECONDS - 1, NOW_SECONDS + DPOP_PROOF_WINDOW_SECONDS + 1]) {
      expect((await refusal(await proof({ iat }))).message, String(iat)).toMatch(/iat/)
    }
    expect((await refusal(await proof({ iat: undefined }))).message).toMatch(/iat/)
  })

  it('refuses a proof without a jti, or with an absurd one', async () => {
    expect((await refusal(await proof({ jti: undefined }))).message).toMatch(/jti/)
    expect((await refusal(await proof({ jti: 'j'.repeat(257) }))).message).toMatch(/jti/)
  })
})

describe('htuOf', () => {
  it('is PUBLIC_URL plus the path as received, without the query', () => {
    expect(htuOf(PUBLIC_URL, '/api/orders?page=2')).toBe(`${PUBLIC_URL}/api/orders`)
    expect(htuOf(PUBLIC_URL, '/bff/native/session')).toBe(`${PUBLIC_URL}/bff/native/session`)
  })
})

describe('the proof checker', () => {
  let clock = NOW
  const now = () => clock
  const store = createMemoryStore(now)
  const checker = createDpopProofChecker({ publicUrl: PUBLIC_URL, replayClaims: store, now })
  const request = { method: 'GET', url: '/bff/user?fresh=1' }

  it('accepts a proof once; its replay is refused', async () => {
    const header = await proof({ jti: 'once' })
    expect(await checker.check(header, request)).toBe(key.jkt)
    await expect(checker.check(header, request)).rejects.toMatchObject({ code: 'BFF_INVALID_DPOP_PROOF', message: expect.stringMatching(/used before/) })
  })

  it('keeps the jti for as long as the proof\'s iat could pass', async () => {
    const header = await proof({ jti: 'remembered' })
    await checker.check(header, request)
    clock = NOW + DPOP_PROOF_WINDOW_SECONDS * 1000
    await expect(checker.check(header, request)).rejects.toMatchObject({ message: expect.stringMatching(/used before/) })
    clock = NOW
  })

  it('scopes a jti to its key: another app may use the same value', async () => {
    await checker.check(await proof({ jti: 'shared' }), request)
    expect(await checker.check(await proof({ jti: 'shared' }, { key: otherKey }), request)).toBe(otherKey.jkt)
  })

  it('refuses a proof by another key than the session\'s, without spending its jti', async () => {
    const header = await proof({ jti: 'bound' })
    await expect(checker.check(header, request, otherKey.jkt)).rejects.toMatchObject({ message: expect.stringMatching(/another key/) })
    expect(await checker.check(header, request, key.jkt)).toBe(key.jkt)
  })

  it('judges htu against PUBLIC_URL and the request\'s own path', async () => {
    await expect(checker.check(await proof(), { method: 'GET', url: '/bff/sessions' })).rejects.toMatchObject({ message: expect.stringMatching(/htu/) })
  })
})
