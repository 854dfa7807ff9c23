import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { createDpopSigner, type DpopKeyStore } from '../src/dpop.js'
import { webPlatformCrypto } from '../src/platform-crypto.js'
import { createWebCryptoKeyStore } from '../src/webcrypto-key-store.js'

const HTU = 'https://app.example.com/api/orders'

describe('DPoP proof', () => {
  it('is a dpop+jwt JWT, ES256, carrying the public key, with htm, htu, iat and jti only', async () => {
    const keyStore = createWebCryptoKeyStore()
    const proof = await createDpopSigner(keyStore, webPlatformCrypto()).proof({ method: 'post', htu: HTU })
    const before = Math.floor(Date.now() / 1000)
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })
    expect(protectedHeader).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: await keyStore.publicJwk() })
    expect(Object.keys(protectedHeader.jwk!).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    expect(Object.keys(payload).sort()).toEqual(['htm', 'htu', 'iat', 'jti'])
    expect(payload).toMatchObject({ htm: 'POST', htu: HTU })
    expect(Math.abs(payload.iat! - before)).toBeLessThanOrEqual(1)
    expect(payload.jti).toMatch(/^[\w-]{22,}$/)
  })

  it('is signed by the key store\'s key', async () => {
    const keyStore = createWebCryptoKeyStore()
    const proof = await createDpopSigner(keyStore, webPlatformCrypto()).proof({ method: 'GET', htu: HTU })
    // Verified against the key store's own public key, not just the one the header names.
    const { publicKey } = await keyStore.keyPair()
    await expect(jwtVerify(proof, publicKey, { typ: 'dpop+jwt' })).resolves.toBeDefined()
    await expect(jwtVerify(proof, (await createWebCryptoKeyStore().keyPair()).publicKey)).rejects.toThrow()
  })

  it('has a new jti every time, under the same key', async () => {
    const signer = createDpopSigner(createWebCryptoKeyStore(), webPlatformCrypto())
    const proofs = await Promise.all(Array.from({ length: 50 }, () => signer.proof({ method: 'GET', htu: HTU })))
    const ids = await Promise.all(proofs.map(async proof => (await jwtVerify(proof, EmbeddedJWK)).payload.jti))
    const thumbprints = await Promise.all(proofs.map(proof => calculateJwkThumbprint(decodeProtectedHeader(proof).jwk!)))
    expect(new Set(ids).size).toBe(50)
    expect(new Set(thumbprints).size).toBe(1)
  })

  it('never carries more of the key than its public members', async () => {
    const inner = createWebCryptoKeyStore()
    const leaky: DpopKeyStore = {
      publicJwk: async () => ({ ...await inner.publicJwk(), d: 'the-private-scalar', kid: 'k1', ext: true } as never),
      sign: (data) => inner.sign(data),
    }
    const proof = await createDpopSigner(leaky, webPlatformCrypto()).proof({ method: 'GET', htu: HTU })
    expect(decodeProtectedHeader(proof).jwk).toEqual(await inner.publicJwk())
  })

  it('refuses a key that is not EC P-256', async () => {
    const rsa: DpopKeyStore = { publicJwk: async () => ({ kty: 'RSA', n: 'x', e: 'AQAB' } as never), sign: async () => new Uint8Array(64) }
    await expect(createDpopSigner(rsa, webPlatformCrypto()).proof({ method: 'GET', htu: HTU })).rejects.toThrow(/P-256/)
  })

  it('refuses a signature that is not the 64-byte r || s (a DER one), naming the fix', async () => {
    const inner = createWebCryptoKeyStore()
    const der: DpopKeyStore = { publicJwk: () => inner.publicJwk(), sign: async () => new Uint8Array(71).fill(0x30) }
    await expect(createDpopSigner(der, webPlatformCrypto()).proof({ method: 'GET', htu: HTU })).rejects.toThrow(/derToJoseSignature/)
  })

  it('asks the key store again after it failed once', async () => {
    const inner = createWebCryptoKeyStore()
    let calls = 0
    const flaky: DpopKeyStore = {
      publicJwk: async () => {
        calls += 1
        if (calls === 1) throw new Error('keychain locked')
        return inner.publicJwk()
      },
      sign: (data) => inner.sign(data),
    }
    const signer = createDpopSigner(flaky, webPlatformCrypto())
    await expect(signer.proof({ method: 'GET', htu: HTU })).rejects.toThrow('keychain locked')
    await expect(signer.proof({ method: 'GET', htu: HTU })).resolves.toMatch(/^ey/)
  })
})
